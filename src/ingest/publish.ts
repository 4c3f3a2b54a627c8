/**
 * Publishes planned messages to JetStream and waits for every PubAck. The broker being away is
 * reported as BrokerUnavailable at once (the client retries later with the same records; the
 * message ids make that safe), never as success.
 */
import type { PlannedMessage } from "../core/plan.ts";
import type { Broker } from "../nats/connection.ts";

export class BrokerUnavailable extends Error {
  override readonly name = "BrokerUnavailable";
}

export interface PublishOptions {
  stream: string;
  timeoutMs: number;
}

/** Resolves to one "duplicate" flag per message, in order. */
export async function publishAll(broker: Broker, messages: readonly PlannedMessage[], opts: PublishOptions): Promise<boolean[]> {
  if (!broker.connected) throw new BrokerUnavailable("not connected to NATS");
  const acks = await Promise.allSettled(
    messages.map((m) => broker.js.publish(m.subject, m.body, { msgID: m.msgId, expect: { streamName: opts.stream }, timeout: opts.timeoutMs })),
  );
  const failed = acks.find((a): a is PromiseRejectedResult => a.status === "rejected");
  if (failed) {
    const reason = failed.reason as Error;
    throw new BrokerUnavailable(`JetStream did not acknowledge: ${reason?.message ?? String(reason)}`, { cause: reason });
  }
  return acks.map((a) => (a as PromiseFulfilledResult<{ duplicate: boolean }>).value.duplicate);
}
