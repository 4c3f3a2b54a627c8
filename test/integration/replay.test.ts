/**
 * `telemetry replay` and `telemetry status` against a live server: truncated rows come back
 * exactly, replaying twice changes nothing, alerts and notifications are never duplicated, the
 * durable consumers are not disturbed, and status reports what the test put in.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import { createSql, type Sql } from "../../src/db/client.ts";
import { evaluatorBacklog } from "../../src/nats/evaluator-backlog.ts";
import { apiClient } from "../helpers/api.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;
let databaseUrl: string;

const DEVICES = 20;
const PER_DEVICE = 50;
const records = Array.from({ length: DEVICES * PER_DEVICE }, (_, i) => ({
  device_id: `rp-${i % DEVICES}`,
  ts: BASE_TS + Math.floor(i / DEVICES) * 60_000,
  metrics: { temp: i % 97 === 0 ? 150 : 20 + (i % 10) },
}));

beforeAll(async () => {
  nats = await startNats();
  databaseUrl = await freshDatabase("replay");
  server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: databaseUrl });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
  const api = apiClient(server);
  await api.createRule({
    name: "hot",
    metric: "temp",
    condition: { type: "above_threshold", threshold: 100 },
    cooldown_seconds: 0,
  });
  for (let i = 0; i < records.length; i += 100) await api.ingest(records.slice(i, i + 100));
  await check(async () => (await count("readings")) === records.length, {
    what: "all readings stored",
    timeoutMs: 30_000,
  });
  // Every partition's consumer exists first (a lease the first round could not take comes in a
  // later one): a consumer not there yet is not in the backlog sum, and would deliver mid-test.
  const partitions = loadConfig({}, {}).evaluatorPartitions + 1; // and the legacy one
  await check(() => server.evaluator!.partitions().length === partitions, {
    what: "the evaluator to hold every partition",
    timeoutMs: 30_000,
  });
  await check(async () => (await pending("TELEMETRY_COMMITTED", "evaluator")) === 0, {
    what: "the evaluator to catch up",
    timeoutMs: 30_000,
  });
}, 120_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

async function count(table: string): Promise<number> {
  return (await sql.unsafe(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
}

async function pending(stream: string, consumer: string): Promise<number> {
  const c =
    consumer === "evaluator"
      ? await evaluatorBacklog(server.broker.jsm, stream) // summed over the evaluation partitions
      : await server.broker.jsm.consumers.info(stream, consumer);
  return c.num_pending + c.num_ack_pending;
}

function cli(...args: string[]) {
  const r = Bun.spawnSync({
    cmd: [process.execPath, "src/cli/main.ts", ...args],
    env: { PATH: process.env.PATH!, NATS_URL: nats.url, DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" },
    stderr: "pipe",
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

const snapshot = async () => ({
  readings: (await sql`SELECT event_id FROM readings ORDER BY event_id`).map((r) => r.event_id),
  alerts: (await sql`SELECT id FROM alerts ORDER BY id`).map((r) => r.id),
  outbox: await count("outbox"),
});

test("truncate the readings, replay from the start: the rows come back exactly; again: nothing changes", async () => {
  const before = await snapshot();
  expect(before.alerts.length).toBeGreaterThan(0);
  const consumers = await Promise.all([
    server.broker.jsm.consumers.info("TELEMETRY", "writer"),
    server.broker.jsm.consumers.info("TELEMETRY_COMMITTED", "evaluator_0"),
  ]);

  await sql`TRUNCATE readings, readings_1m`;
  const first = cli("replay", "--from", "1");
  expect(first.code).toBe(0);
  expect(first.out).toContain(`rows inserted: ${records.length}, rows already present: 0`);
  expect(first.out).toContain("alerts created: 0");
  expect(await snapshot()).toEqual(before);
  expect(Number((await sql`SELECT sum(count) AS n FROM readings_1m`)[0]!.n)).toBe(records.length);

  const second = cli("replay", "--from", "1");
  expect(second.code).toBe(0);
  expect(second.out).toContain(`rows inserted: 0, rows already present: ${records.length}`);
  expect(await snapshot()).toEqual(before);

  // The durable consumers did not move, and no consumer was left behind.
  const after = await Promise.all([
    server.broker.jsm.consumers.info("TELEMETRY", "writer"),
    server.broker.jsm.consumers.info("TELEMETRY_COMMITTED", "evaluator_0"),
  ]);
  expect(after.map((c) => [c.delivered.stream_seq, c.ack_floor.stream_seq])).toEqual(
    consumers.map((c) => [c.delivered.stream_seq, c.ack_floor.stream_seq]),
  );
  const names: string[] = [];
  for await (const c of server.broker.jsm.consumers.list("TELEMETRY")) names.push(c.name);
  expect(names).toEqual(["writer"]);
}, 120_000);

test("a dry run reports what would change and changes nothing; filters by tenant and device", async () => {
  await sql`DELETE FROM readings WHERE device_id = 'rp-3'`;
  const before = await snapshot();
  const dry = cli("replay", "--from", "1", "--dry-run", "--tenant", "acme", "--device", "rp-3", "--target", "writer");
  expect(dry.code).toBe(0);
  expect(dry.out).toContain(`rows that would be inserted: ${PER_DEVICE}, rows already present: 0`);
  expect(await snapshot()).toEqual(before);
  expect(cli("replay", "--from", "1", "--tenant", "acme", "--device", "rp-3", "--target", "writer").out).toContain(
    `rows inserted: ${PER_DEVICE}`,
  );
});

test("replay while live ingestion continues: live data is unaffected", async () => {
  const api = apiClient(server);
  const live = Array.from({ length: 600 }, (_, i) => ({
    device_id: `live-${i % 5}`,
    ts: BASE_TS + 10_000_000 + i * 1000,
    metrics: { temp: 21 },
  }));
  const feeding = (async () => {
    for (let i = 0; i < live.length; i += 20) await api.ingest(live.slice(i, i + 20));
  })();
  const replayed = cli("replay", "--from", "1", "--rate", "20000");
  await feeding;
  expect(replayed.code).toBe(0);
  await check(
    async () =>
      (await sql`SELECT count(*)::int AS n FROM readings WHERE device_id LIKE 'live-%'`)[0]!.n === live.length,
    { what: "every live reading" },
  );
  expect(await count("readings")).toBe(records.length + live.length);
  await check(async () => (await pending("TELEMETRY", "writer")) === 0, {
    what: "the writer's consumer to be drained",
  });
});

test("a relative --from reaching before the stream's first message starts there and says what was asked and what was available", async () => {
  const { state } = await server.broker.jsm.streams.info("TELEMETRY");
  const r = cli("replay", "--from", "30d", "--dry-run", "--tenant", "acme", "--device", "rp-3", "--target", "writer");
  expect(r.err).toContain(`--from 30d asked for ${new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10)}`);
  expect(r.err).toContain(`the stream's first message is sequence ${state.first_seq}, ${state.first_ts}`);
  expect(r.code).toBe(0);
  expect(r.out).toContain(`rows that would be inserted: 0, rows already present: ${PER_DEVICE}`);
});

test("clear errors: an explicit time or sequence before the stream's start, unknown tenant, bad time, --device without --tenant", () => {
  const early = cli("replay", "--from", "2020-01-01T00:00:00Z");
  expect(early.code).toBe(2);
  expect(early.err).toContain("before the stream's first message");
  const earlySeq = cli("replay", "--from", "0");
  expect(earlySeq.code).toBe(2);
  expect(earlySeq.err).toContain(
    "--from sequence 0 is before the stream's first message (the stream's first message is sequence 1",
  );
  expect(cli("replay", "--from", "1", "--tenant", "nobody").err).toContain('unknown tenant "nobody"');
  const bad = cli("replay", "--from", "yesterday-ish");
  expect(bad.code).toBe(2);
  expect(bad.err).toContain("--from:");
  expect(cli("replay", "--from", "1", "--device", "rp-1").err).toContain("--device needs --tenant");
});

test("status reports the stream, consumers, dead letters, quarantine, database and outbox", async () => {
  await check(
    async () =>
      (await pending("TELEMETRY", "writer")) === 0 && (await pending("TELEMETRY_COMMITTED", "evaluator")) === 0,
    { what: "idle consumers" },
  );
  const r = cli("status", "--json");
  expect(r.code).toBe(0);
  const s = JSON.parse(r.out);
  const info = await server.broker.jsm.streams.info("TELEMETRY");
  expect(s.stream).toMatchObject({ name: "TELEMETRY", messages: info.state.messages });
  expect(s.consumers.writer).toEqual({ pending: 0, ack_pending: 0, redelivered: expect.any(Number) });
  expect(s.consumers.evaluator.pending).toBe(0);
  expect(s.dlq).toBe(0);
  expect(s.database).toMatchObject({ reachable: true, mode: "postgresql", quarantine: {} });
  const text = cli("status").out;
  expect(text).toContain("database:   reachable, storage postgresql");
});
