/** The TimescaleDB path: migrations make hypertables and policies; the writer's rows land in them. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { identity, validRecords } from "../helpers/data.ts";
import { check, startNats } from "../helpers/services.ts";
import { post, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";
import { startTimescale, type TimescaleDb } from "../helpers/timescale.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let tsdb: TimescaleDb;
let server: TestServer | undefined;

beforeAll(async () => {
  nats = await startNats();
  tsdb = await startTimescale();
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: tsdb.url,
    TELEMETRY_DB_POOL_MAX: "1",
    TELEMETRY_TIMESCALE: "on",
    TELEMETRY_RETENTION: "365d",
  });
}, 60_000);

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
  await tsdb?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

test("readings land in a compressed-capable hypertable with retention and compression policies", async () => {
  expect(server!.storageMode).toBe("timescaledb");
  const records = validRecords(1_000, 10);
  for (let i = 0; i < records.length; i += 250) expect((await post(server!, records.slice(i, i + 250))).status).toBe(202);
  const again = await post(server!, records.slice(0, 250));
  expect(again.body.duplicate).toBe(250);

  // Read back through the API (PGlite serves one connection: the server's).
  const perDevice = async (d: string) =>
    ((await (await fetch(`${server!.url}/api/v1/devices/${d}/readings?limit=10000`, { headers: { authorization: `Bearer ${TEST_KEY}` } })).json()) as { readings: unknown[] }).readings;
  await check(async () => (await perDevice("dev-9")).length === 100, { what: "dev-9 readings", timeoutMs: 60_000 });
  await check(async () => server!.writer!.stats.held === 0 && server!.writer!.stats.readings >= 1_000, { what: "writer idle" });

  await server![Symbol.asyncDispose]();
  server = undefined;
  const [ht] = await tsdb.query<{ hypertable_name: string; compression_enabled: boolean }>(
    "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables",
  );
  expect(ht).toEqual({ hypertable_name: "readings", compression_enabled: true });
  const jobs = await tsdb.query<{ proc_name: string }>("SELECT proc_name FROM timescaledb_information.jobs WHERE hypertable_name = 'readings' ORDER BY 1");
  expect(jobs.map((j) => j.proc_name)).toEqual(["policy_compression", "policy_retention"]);
  const rows = await tsdb.query<{ device_id: string; ms: string }>("SELECT device_id, (extract(epoch from ts) * 1000)::bigint::text AS ms FROM readings");
  expect(new Set(rows.map((r) => `${r.device_id}@${r.ms}`))).toEqual(new Set(records.map(identity)));
  const chunks = await tsdb.query<{ n: number }>("SELECT count(*)::int AS n FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'");
  expect(chunks[0]!.n).toBeGreaterThan(0);
  // Compressing a chunk keeps the rows readable and the key still refuses a duplicate.
  await tsdb.query("SELECT compress_chunk(c) FROM show_chunks('readings') c");
  expect((await tsdb.query<{ n: number }>("SELECT count(*)::int AS n FROM readings"))[0]!.n).toBe(1_000);
  await tsdb.query("INSERT INTO readings SELECT * FROM readings ORDER BY ts LIMIT 10 ON CONFLICT DO NOTHING");
  expect((await tsdb.query<{ n: number }>("SELECT count(*)::int AS n FROM readings"))[0]!.n).toBe(1_000);
});
