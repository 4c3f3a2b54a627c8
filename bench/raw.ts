/**
 * Raw limits of the parts, measured on the same rows the server gets (bench/data.ts):
 *  - JetStream publish, hand-pipelined (core publish + reply inbox + own PubAck parsing, a window
 *    of messages in flight), each message acked by the stream;
 *  - a durable consumer, `consume({callback})` with max_messages 1000, acking every message;
 *  - PostgreSQL: the writer's own writeBatch (one transaction per batch: readings, rollups,
 *    devices) on one connection, batches of the writer's default size.
 * Each runs alone, in this process, against the bench's nats-server and PostgreSQL.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { PlannedMessage } from "../src/core/plan.ts";
import { decodeEnvelope, type Envelope } from "../src/core/envelope.ts";
import { createSql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { AckedPublisher } from "../src/nats/publisher.ts";
import { ensureStream } from "../src/nats/stream.ts";
import { writeBatch } from "../src/writer/sink.ts";

export interface Rate {
  items: number;
  readings: number;
  seconds: number;
}

const readingsOf = (messages: readonly PlannedMessage[]) => messages.reduce((n, m) => n + m.indexes.length, 0);

export async function createBenchStream(natsUrl: string, name: string, subjects: string[]): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  await ensureStream(await jetstreamManager(nc), {
    name,
    subjects,
    maxAgeMs: 3_600_000,
    duplicateWindowMs: 120_000,
    replicas: 1,
  });
  await nc.close();
}

/** Publishes every message with `window` in flight; resolves when the last PubAck is in. */
export async function rawPublish(
  natsUrl: string,
  stream: string,
  messages: readonly PlannedMessage[],
  window = 2_000,
): Promise<Rate> {
  const nc = await connect({ servers: natsUrl });
  const pub = new AckedPublisher(nc, 10_000);
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < messages.length) {
      const m = messages[next++]!;
      await pub.publish(m.subject, m.body, { msgId: m.msgId, expectStream: stream });
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  const seconds = (performance.now() - started) / 1000;
  pub.close();
  await nc.close();
  return { items: messages.length, readings: readingsOf(messages), seconds };
}

/** Consumes `count` messages from the start of the stream with a new durable, acking each. */
export async function rawConsume(
  natsUrl: string,
  stream: string,
  count: number,
  readingsPerMessage: (m: JsMsg) => number = () => 1,
): Promise<Rate> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const durable = `raw-${Date.now()}`;
  await jsm.consumers.add(stream, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 10_000,
  });
  const consumer = await jetstream(nc).consumers.get(stream, durable);
  let seen = 0;
  let readings = 0;
  const started = performance.now();
  const done = Promise.withResolvers<void>();
  const messages = await consumer.consume({
    max_messages: 1_000,
    callback: (m) => {
      readings += readingsPerMessage(m);
      m.ack();
      if (++seen === count) done.resolve();
    },
  });
  await done.promise;
  const seconds = (performance.now() - started) / 1000;
  await messages.close();
  await jsm.consumers.delete(stream, durable);
  await nc.close();
  return { items: seen, readings, seconds };
}

/** Readings of the messages cut into batches of about `batchSize` readings, as the writer cuts them. */
export function envelopeBatches(messages: readonly PlannedMessage[], batchSize: number): Envelope[][] {
  const batches: Envelope[][] = [];
  let current: Envelope[] = [];
  let n = 0;
  for (const m of messages) {
    const env = decodeEnvelope(m.body);
    current.push(env);
    n += env.readings.length;
    if (n >= batchSize) {
      batches.push(current);
      current = [];
      n = 0;
    }
  }
  if (current.length) batches.push(current);
  return batches;
}

/**
 * Migrates a fresh database and inserts every batch with the writer's writeBatch on `connections`
 * connections at once (the writer's own concurrency), each pulling the next batch.
 */
export async function rawInsert(
  databaseUrl: string,
  batches: readonly Envelope[][],
  connections: number,
): Promise<Rate> {
  const sql = createSql(databaseUrl, { max: connections, name: "bench-raw" });
  await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });
  let readings = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < batches.length) readings += (await writeBatch(sql, batches[next++]!)).inserted;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await sql.end();
  return { items: batches.length, readings, seconds };
}

export interface Latency {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * One message at a time at a fixed rate (open loop: latency from each message's scheduled time),
 * every PubAck awaited: the broker's own latency floor for single-record requests.
 */
export async function rawPublishLatency(
  natsUrl: string,
  stream: string,
  messages: readonly PlannedMessage[],
  rate: number,
  seconds: number,
): Promise<Latency> {
  const nc = await connect({ servers: natsUrl });
  const pub = new AckedPublisher(nc, 10_000);
  const total = Math.min(messages.length, Math.floor(rate * seconds));
  const latencies: number[] = [];
  const inflight: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const scheduled = started + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    const m = messages[i]!;
    const from = Math.min(scheduled, performance.now()); // sent early: timed from the send
    inflight.push(
      pub
        .publish(m.subject, m.body, { msgId: m.msgId, expectStream: stream })
        .then(() => void latencies.push(performance.now() - from)),
    );
  }
  await Promise.all(inflight);
  pub.close();
  await nc.close();
  latencies.sort((a, b) => a - b);
  const at = (p: number) =>
    Number(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(2));
  return { count: latencies.length, p50: at(0.5), p99: at(0.99), max: at(1) };
}
