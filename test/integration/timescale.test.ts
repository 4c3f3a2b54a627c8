/**
 * The TimescaleDB path: migrations make hypertables (readings, rollups) and policies; the writer's
 * rows and rollups land in them; the evaluator computes deviation alerts from the rollup
 * hypertable. PGlite serves one connection at a time, so the phases run one after another.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { v4 as uuidv4 } from "uuid";
import { createSql } from "../../src/db/client.ts";
import { startEvaluator } from "../../src/evaluator/evaluator.ts";
import { connectBroker } from "../../src/nats/connection.ts";
import { BASE_TS, identity, validRecords } from "../helpers/data.ts";
import { check, startNats } from "../helpers/services.ts";
import { post, startTestServer } from "../helpers/server.ts";
import { startTimescale, type TimescaleDb } from "../helpers/timescale.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let tsdb: TimescaleDb;

beforeAll(async () => {
  nats = await startNats();
  tsdb = await startTimescale();
}, 60_000);

afterAll(async () => {
  await tsdb?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const count = async (q: string) => (await tsdb.query<{ n: number }>(q))[0]!.n;
const records = validRecords(1_000, 10);
const outlier = { device_id: "dev-0", ts: BASE_TS + 1_060_000, metrics: { temp: 99 } };

test("writer: hypertables with compression and retention policies hold every reading and rollup once", async () => {
  const server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: tsdb.url,
    TELEMETRY_ROLES: "ingest,writer",
    TELEMETRY_DB_POOL_MAX: "1",
    // PGlite's WASM runtime aborts on the default 2,000-reading batches (COPY is not used there either).
    TELEMETRY_BATCH_SIZE: "500",
    TELEMETRY_TIMESCALE: "on",
    TELEMETRY_RETENTION: "365d",
  });
  try {
    expect(server.storageMode).toBe("timescaledb");
    for (let i = 0; i < records.length; i += 250) expect((await post(server, records.slice(i, i + 250))).status).toBe(202);
    expect((await post(server, records.slice(0, 250))).body.duplicate).toBe(250);
    expect((await post(server, [outlier])).status).toBe(202);
    await check(() => server.writer!.stats.readings >= 1_001 && server.writer!.stats.held === 0, { what: "the writer to store everything", timeoutMs: 60_000 });
  } finally {
    await server[Symbol.asyncDispose]();
  }

  const hypertables = await tsdb.query<{ hypertable_name: string; compression_enabled: boolean }>(
    "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables ORDER BY 1",
  );
  expect(hypertables).toEqual([
    { hypertable_name: "readings", compression_enabled: true },
    { hypertable_name: "readings_1m", compression_enabled: false },
  ]);
  const jobs = await tsdb.query<{ proc_name: string }>("SELECT proc_name FROM timescaledb_information.jobs WHERE hypertable_name = 'readings' ORDER BY 1");
  expect(jobs.map((j) => j.proc_name)).toEqual(["policy_compression", "policy_retention"]);
  const rows = await tsdb.query<{ device_id: string; ms: string }>("SELECT device_id, (extract(epoch from ts) * 1000)::bigint::text AS ms FROM readings");
  expect(new Set(rows.map((r) => `${r.device_id}@${r.ms}`))).toEqual(new Set([...records, outlier].map(identity)));
  expect(await count("SELECT sum(count)::int AS n FROM readings_1m WHERE metric = 'temp'")).toBe(1_001);
  // Compressing a chunk keeps the rows readable and the key still refuses a duplicate.
  await tsdb.query("SELECT compress_chunk(c) FROM show_chunks('readings') c");
  expect(await count("SELECT count(*)::int AS n FROM readings")).toBe(1_001);
  await tsdb.query("INSERT INTO readings SELECT * FROM readings ORDER BY ts LIMIT 10 ON CONFLICT DO NOTHING");
  expect(await count("SELECT count(*)::int AS n FROM readings")).toBe(1_001);
}, 120_000);

test("evaluator: a deviation rule over the rollup hypertable fires for the outlier only", async () => {
  const ruleId = uuidv4();
  await tsdb.query(
    `INSERT INTO rules (id, tenant, name, severity, metric, condition) VALUES ($1, 'acme', 'temp outlier', 'warning', 'temp', $2)`,
    [ruleId, JSON.stringify({ type: "deviation_from_mean", k: 4, window_minutes: 30 })],
  );
  const broker = await connectBroker(nats.url, { name: "timescale-test" });
  const sql = createSql(tsdb.url, { max: 1, name: "evaluator" });
  const evaluator = await startEvaluator(broker, sql, { stream: "TELEMETRY_COMMITTED", durable: "evaluator", noDataIntervalMs: 60_000 });
  try {
    const events = (await broker.jsm.streams.info("TELEMETRY_COMMITTED")).state.messages;
    await check(() => evaluator.stats.batches >= events, { what: `${events} committed events evaluated`, timeoutMs: 60_000 });
  } finally {
    await evaluator.stop(5_000);
    await sql.end();
    await broker.close();
  }
  const alerts = await tsdb.query<{ device_id: string; value: number; triggered_at: Date }>("SELECT device_id, value, triggered_at FROM alerts");
  expect(alerts).toEqual([{ device_id: "dev-0", value: 99, triggered_at: new Date(outlier.ts) }]);
}, 120_000);
