/**
 * The last steps of admission, shared by every source (HTTP in ingest/, MQTT in mqtt/): valid
 * readings to per-device broker messages (core/plan), published to the telemetry stream with
 * their message ids, each waiting for its PubAck (nats/publish). Here, in a shared folder, because
 * two roles use it and roles do not import each other (docs/decisions/0420-one-admission-path.md).
 * Throws BrokerUnavailable when nothing could be published; what that means is the source's
 * business (HTTP answers 503, MQTT leaves its messages unacked).
 */
import { planMessages, type Plan } from "../core/plan.ts";
import type { Reading } from "../core/record.ts";
import type { Broker } from "../nats/connection.ts";
import { publishAll, type PublishOutcome } from "../nats/publish.ts";

export const MAX_MESSAGE_BYTES = 256 * 1024;

export interface PublishStepOptions {
  stream: string;
  dlqStream: string;
  recordsPerMessage: number;
  publishTimeoutMs: number;
}

/** The plan and one outcome per planned message, in the plan's order. */
export async function planAndPublish(
  broker: Broker,
  items: ReadonlyArray<{ index: number; reading: Reading }>,
  o: PublishStepOptions,
  receivedAt: number,
): Promise<{ plan: Plan; outcomes: PublishOutcome[] }> {
  const plan = planMessages(items, { maxRecords: o.recordsPerMessage, maxBytes: MAX_MESSAGE_BYTES, receivedAt });
  const outcomes = await publishAll(broker, plan.messages, {
    stream: o.stream,
    dlqStream: o.dlqStream,
    timeoutMs: o.publishTimeoutMs,
  });
  return { plan, outcomes };
}
