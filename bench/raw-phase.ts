/**
 * Phase 1 of the bench, the raw parts on the same rows (bench/raw.ts, bench/floor.ts): publish,
 * consume, the single-record latency floors of the broker and of HTTP, and PostgreSQL insert by
 * the writer's own method, against the bench's nats-server and PostgreSQL.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { LocalNats, LocalPostgres } from "../src/embedded/types.ts";
import { plannedMessages } from "./data.ts";
import { fmt } from "./env.ts";
import { httpFloor } from "./floor.ts";
import type { Row } from "./phases.ts";
import { createBenchStream, envelopeBatches, rawConsume, rawInsert, rawPublish, rawPublishLatency } from "./raw.ts";

export const WRITER_FLUSHES = 2; // the writer's default concurrency (src/writer/writer.ts)
export const BATCH = 2_000; // TELEMETRY_BATCH_SIZE's default

const r = (x: { readings: number; seconds: number }) => x.readings / x.seconds;

async function deleteStream(natsUrl: string, name: string): Promise<void> {
  const admin = await connect({ servers: natsUrl });
  await (await jetstreamManager(admin)).streams.delete(name);
  await admin.close();
}

export async function rawParts(
  nats: LocalNats,
  pg: LocalPostgres,
  rawReadings: number,
  singleRate: number,
  singleSeconds: number,
  step: (what: string) => void,
): Promise<{ rows: Row[]; publish: number; consume: number; insert: number }> {
  step(`raw parts on ${fmt(rawReadings)} readings`);
  const messages = plannedMessages("raw", rawReadings);
  await createBenchStream(nats.url, "RAW", ["telemetry.v1.>"]);
  const pub = await rawPublish(nats.url, "RAW", messages);
  const con = await rawConsume(nats.url, "RAW", messages.length, (m) => m.json<{ r: unknown[] }>().r.length);
  await deleteStream(nats.url, "RAW");
  // Latency floors of the single-record phase: the broker alone, and the load generator against a do-nothing HTTP server.
  step(`raw latency floors at ${fmt(singleRate)}/s, ${singleSeconds} s each`);
  await createBenchStream(nats.url, "RAWLAT", ["telemetry.v1.>"]);
  const single = plannedMessages("lat", singleRate * singleSeconds, 1);
  const lat = await rawPublishLatency(nats.url, "RAWLAT", single, singleRate, singleSeconds);
  await deleteStream(nats.url, "RAWLAT");
  const floor = await httpFloor(singleRate, singleSeconds);
  const batches = envelopeBatches(messages, BATCH);
  await pg.createDatabase("raw1");
  await pg.createDatabase("raw2");
  const ins1 = await rawInsert(pg.urlFor("raw1"), batches, 1);
  const insN = await rawInsert(pg.urlFor("raw2"), batches, WRITER_FLUSHES);
  const rows: Row[] = [
    [
      "Raw: JetStream publish, hand-pipelined (2,000 in flight), every message acked",
      `${fmt(r(pub))} readings/s`,
      `${fmt(pub.items / pub.seconds)} msg/s of ${messages[0]!.indexes.length} readings (the server's messages for this load)`,
    ],
    [
      "Raw: consumer (consume callback, max_messages 1000), ack per message",
      `${fmt(r(con))} readings/s`,
      `${fmt(con.items / con.seconds)} msg/s`,
    ],
    [
      `Raw: JetStream publish of single-reading messages, one at a time at a fixed ${fmt(singleRate)}/s (open loop), PubAck awaited`,
      `p50 ${lat.p50} ms, p99 ${lat.p99} ms`,
      `${fmt(lat.count)} messages, max ${lat.max} ms: the broker's own floor for single-record requests`,
    ],
    [
      `Raw: HTTP, the same load generator at ${fmt(singleRate)} req/s against a Bun server answering 202 at once`,
      `p50 ${floor.p50} ms, p99 ${floor.p99} ms`,
      `max ${floor.max} ms: the load generator's and HTTP's own floor`,
    ],
    [
      `Raw: PostgreSQL insert by the writer's writeBatch (COPY + rollups + devices), batches of ${BATCH}`,
      `${fmt(r(insN))} readings/s on ${WRITER_FLUSHES} connections`,
      `${fmt(r(ins1))} readings/s on 1 connection`,
    ],
  ];
  // The better of the two raw insert rates is the reference (conservative: the 2-connection run has
  // come out below the 1-connection one on this machine, unexplained; see docs/performance.md).
  return { rows, publish: r(pub), consume: r(con), insert: Math.max(r(ins1), r(insN)) };
}
