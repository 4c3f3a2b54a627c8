/**
 * The dead-letter stream: broker messages ingest could not store (a permanent publish failure
 * while the broker was up), kept with their original body, subject and message id. An operator
 * lists them and, once the cause is fixed, publishes them again to the telemetry stream with
 * their ORIGINAL message id (event ids make a second copy harmless anyway), then deletes them.
 */
import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { decodeEnvelope } from "../core/envelope.ts";
import { errorText } from "../db/errors.ts";
import type { Broker } from "../nats/connection.ts";

export interface DeadLetter {
  seq: number;
  time: string;
  subject: string;
  msgId: string | null;
  failure: string;
  readings: number | null;
  body: Uint8Array;
}

function toDeadLetter(m: JsMsg): DeadLetter {
  let readings: number | null = null;
  try {
    readings = decodeEnvelope(m.string()).readings.length;
  } catch {}
  return {
    seq: m.seq,
    time: new Date(m.info.timestampNanos / 1e6).toISOString(),
    subject: m.headers?.get("Telemetry-Original-Subject") || "",
    msgId: m.headers?.get("Nats-Msg-Id") || null,
    failure: m.headers?.get("Telemetry-Failure") || "",
    readings,
    body: m.data,
  };
}

/** Every dead letter (or the one with `seq`), oldest first, read with an ephemeral ordered consumer. */
export async function readDeadLetters(
  broker: Broker,
  dlqStream: string,
  opts: { seq?: number; limit?: number } = {},
): Promise<DeadLetter[]> {
  const { state } = await broker.jsm.streams.info(dlqStream);
  if (state.messages === 0) return [];
  if (opts.seq !== undefined) {
    const m = await broker.jsm.streams.getMessage(dlqStream, { seq: opts.seq }).catch(() => null);
    if (!m) throw new Error(`no dead letter with sequence ${opts.seq}`);
    const body = m.data;
    let readings: number | null = null;
    try {
      readings = decodeEnvelope(m.string()).readings.length;
    } catch {}
    return [
      {
        seq: m.seq,
        time: m.time.toISOString(),
        subject: m.header.get("Telemetry-Original-Subject") || "",
        msgId: m.header.get("Nats-Msg-Id") || null,
        failure: m.header.get("Telemetry-Failure") || "",
        readings,
        body,
      },
    ];
  }
  const consumer = await broker.js.consumers.get(dlqStream, { deliver_policy: DeliverPolicy.All });
  const out: DeadLetter[] = [];
  try {
    const limit = Math.min(opts.limit ?? Number.MAX_SAFE_INTEGER, state.messages);
    while (out.length < limit) {
      const m = await consumer.next({ expires: 2_000 });
      if (!m) break;
      out.push(toDeadLetter(m));
      if (m.info.pending === 0 || m.seq >= state.last_seq) break;
    }
  } finally {
    await consumer.delete().catch(() => false);
  }
  return out;
}

export interface DlqReplayResult {
  replayed: number;
  failed: Array<{ seq: number; error: string }>;
}

/** Publishes each dead letter to its original subject on the telemetry stream, then deletes it. */
export async function replayDeadLetters(
  broker: Broker,
  o: { stream: string; dlqStream: string; letters: readonly DeadLetter[] },
): Promise<DlqReplayResult> {
  const result: DlqReplayResult = { replayed: 0, failed: [] };
  for (const d of o.letters) {
    try {
      if (!d.subject) throw new Error("no Telemetry-Original-Subject header");
      await broker.js.publish(d.subject, d.body, {
        ...(d.msgId ? { msgID: d.msgId } : {}),
        expect: { streamName: o.stream },
      });
      await broker.jsm.streams.deleteMessage(o.dlqStream, d.seq, false);
      result.replayed++;
    } catch (err) {
      result.failed.push({ seq: d.seq, error: errorText(err) });
    }
  }
  return result;
}

export async function purgeDeadLetters(broker: Broker, dlqStream: string, seq?: number): Promise<number> {
  if (seq !== undefined) return (await broker.jsm.streams.deleteMessage(dlqStream, seq, false)) ? 1 : 0;
  return (await broker.jsm.streams.purge(dlqStream)).purged;
}
