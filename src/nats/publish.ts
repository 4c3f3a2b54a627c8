/**
 * Publishes planned messages to JetStream and waits for every PubAck.
 * - The broker away (not connected, or lost during the retries): BrokerUnavailable -> 503, never
 *   202; the client retries later with the same records and the message ids make that safe.
 * - A transient failure (timeout, no responders during a leader change) is retried up to 3 times
 *   with exponential backoff and the SAME message id, so a publish that did land is deduplicated.
 *   Still transient after that: the broker is effectively unavailable (a JetStream cluster electing
 *   a stream leader takes seconds): BrokerUnavailable -> 503, the client retries the same records.
 * - A failure while the broker is up that retrying cannot fix (stream full, message too large, …):
 *   the message goes to the dead-letter stream with its original body and the failure, and its
 *   records are reported as dead_lettered (202, the data is kept; an operator replays it).
 */
import type { PlannedMessage } from "../core/plan.ts";
import { backoffMs, sleep } from "../lib/backoff.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import type { Broker } from "./connection.ts";
import { PublishError } from "./publisher.ts";
import { DLQ_PREFIX } from "./topology.ts";

const log = logger("ingest");
const RETRIES = 3;

export class BrokerUnavailable extends Error {
  override readonly name = "BrokerUnavailable";
}

export interface PublishOptions {
  stream: string;
  dlqStream: string;
  /** Per attempt. */
  timeoutMs: number;
}

export type PublishOutcome = { status: "stored"; duplicate: boolean } | { status: "dead_lettered"; error: string };

/** Whether another attempt with the same message id may succeed. */
function isTransient(err: unknown): boolean {
  if (err instanceof PublishError) return err.transient; // 503 no responders / unavailable, 408 timeout
  return true; // connection trouble
}

async function publishOne(broker: Broker, m: PlannedMessage, opts: PublishOptions): Promise<PublishOutcome> {
  let lastError: unknown;
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    if (attempt > 0) {
      metrics.publishRetries.inc();
      await sleep(backoffMs(attempt - 1, 50, 400));
    }
    if (!broker.connected) throw new BrokerUnavailable("not connected to NATS");
    try {
      const ack = await broker.publisher.publish(
        m.subject,
        m.body,
        { msgId: m.msgId, expectStream: opts.stream },
        opts.timeoutMs,
      );
      if (ack.duplicate && ack.seq === 0) {
        // A clustered stream's leader stages a message id with sequence 0 while its proposal is in
        // flight; nats-server 2.9 answers a copy with {"duplicate":true,"seq":0} (newer versions
        // answer an error), and if that proposal is lost in a leader change the first copy is never
        // stored. Not an acknowledgement: try again, then 503.
        lastError = new PublishError("JetStream reports a duplicate of a message it has not stored (seq 0)", 503);
        log.warn(
          { subject: m.subject, msgId: m.msgId, attempt: attempt + 1 },
          "duplicate PubAck without a sequence; not treated as stored",
        );
        continue;
      }
      // After a timed-out attempt, "duplicate" most likely means that attempt landed: it is ours.
      return { status: "stored", duplicate: ack.duplicate && attempt === 0 };
    } catch (err) {
      lastError = err;
      if (!isTransient(err)) break;
    }
  }
  // Only a failure retrying cannot fix is dead-lettered (a dead-lettered record is not bound for the database).
  if (!broker.connected || isTransient(lastError))
    throw new BrokerUnavailable(`JetStream did not acknowledge: ${(lastError as Error)?.message}`, {
      cause: lastError,
    });
  return deadLetter(broker, m, opts, (lastError as Error)?.message ?? String(lastError));
}

async function deadLetter(
  broker: Broker,
  m: PlannedMessage,
  opts: PublishOptions,
  error: string,
): Promise<PublishOutcome> {
  const h = {
    "Telemetry-Failure": error.slice(0, 1_000).replace(/[\r\n]+/g, " "),
    "Telemetry-Original-Subject": m.subject,
  };
  try {
    await broker.publisher.publish(
      `${DLQ_PREFIX}.${m.subject.split(".")[2]}`,
      m.body,
      { msgId: m.msgId, expectStream: opts.dlqStream, headers: h },
      opts.timeoutMs,
    );
  } catch (err) {
    throw new BrokerUnavailable(
      `publish failed (${error}) and so did the dead-letter publish: ${(err as Error).message}`,
      { cause: err },
    );
  }
  log.warn({ subject: m.subject, msgId: m.msgId, error }, "message dead-lettered");
  return { status: "dead_lettered", error };
}

/** One outcome per message, in order; throws BrokerUnavailable when the broker is away. */
export async function publishAll(
  broker: Broker,
  messages: readonly PlannedMessage[],
  opts: PublishOptions,
): Promise<PublishOutcome[]> {
  if (!broker.connected) throw new BrokerUnavailable("not connected to NATS");
  const started = performance.now();
  if (messages.length === 1) {
    // A single record's request: the same outcome without allSettled's array and result objects.
    let outcome: PublishOutcome;
    try {
      outcome = await publishOne(broker, messages[0]!, opts);
    } catch (err) {
      metrics.publishSeconds.observe((performance.now() - started) / 1000);
      throw err instanceof BrokerUnavailable ? err : new BrokerUnavailable(String(err), { cause: err });
    }
    metrics.publishSeconds.observe((performance.now() - started) / 1000);
    return [outcome];
  }
  const results = await Promise.allSettled(messages.map((m) => publishOne(broker, m, opts)));
  metrics.publishSeconds.observe((performance.now() - started) / 1000);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed)
    throw failed.reason instanceof BrokerUnavailable
      ? failed.reason
      : new BrokerUnavailable(String(failed.reason), { cause: failed.reason });
  return results.map((r) => (r as PromiseFulfilledResult<PublishOutcome>).value);
}
