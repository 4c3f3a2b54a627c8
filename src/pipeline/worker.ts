/**
 * The consumer side every worker shares: a durable JetStream pull consumer set up idempotently,
 * pulls that expire after 5 s, its status problems logged, and poison messages kept in the
 * quarantine table and terminated instead of redelivered forever. See
 * docs/decisions/0340-worker-skeleton.md for how a worker is put together from these parts.
 */
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { Sql } from "../db/client.ts";
import { insertQuarantine, type QuarantineRow } from "../db/quarantine.ts";
import type { Logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import type { Broker } from "../nats/connection.ts";
import { ensureDurableConsumer } from "../nats/stream.ts";

/**
 * Pulls expire after 5 s (heartbeats every 2.5 s): a pull request lives only on the consumer's
 * leader, so when a NATS cluster moves that leader, the lost pull is noticed (two missed
 * heartbeats) and re-issued within ~5 s instead of the default 30 s.
 */
export const PULL_EXPIRES_MS = 5_000;

export interface DurableSettings {
  stream: string;
  durable: string;
  ackWaitMs: number;
  /** Messages delivered and not yet acked, at most (what an outage backs up into JetStream). */
  maxAckPending: number;
  /** Messages asked for per pull. */
  maxMessages: number;
  /** Called for each message; without it the returned messages are read as an async iterator. */
  callback?: (msg: JsMsg) => void;
}

/** Creates (or adopts) the durable consumer and starts consuming it. Close the result to stop. */
export async function consumeDurable(broker: Broker, log: Logger, s: DurableSettings): Promise<ConsumerMessages> {
  await ensureDurableConsumer(broker.jsm, {
    stream: s.stream,
    durable: s.durable,
    ackWaitMs: s.ackWaitMs,
    maxAckPending: s.maxAckPending,
  });
  const consumer = await broker.js.consumers.get(s.stream, s.durable);
  const messages = await consumer.consume({
    max_messages: s.maxMessages,
    expires: PULL_EXPIRES_MS,
    callback: s.callback,
  });
  void (async () => {
    for await (const st of messages.status()) {
      if (st.type === "heartbeats_missed" || st.type === "consumer_not_found" || st.type === "stream_not_found") {
        log.warn({ status: st.type }, "consumer status");
      }
    }
  })();
  return messages;
}

/** The quarantine row of a message that can never be processed. */
export function quarantineRow(source: QuarantineRow["source"], msg: JsMsg, reason: string): QuarantineRow {
  return { source, subject: msg.subject, streamSeq: msg.seq, reason, payload: msg.string() };
}

/** Ends a message's redeliveries (after its quarantine row is stored). */
export function terminate(msg: JsMsg): void {
  msg.term(); // no reason argument: nats-server 2.9 ignores "+TERM <reason>" and would redeliver
}

/** Records a poison message in the quarantine table, counts it, then terminates it. Throws (the message stays unacked) when the row cannot be stored. */
export async function quarantine(sql: Sql, source: QuarantineRow["source"], msg: JsMsg, reason: string): Promise<void> {
  await insertQuarantine(sql, quarantineRow(source, msg, reason));
  metrics.quarantined.inc({ source });
  terminate(msg);
}
