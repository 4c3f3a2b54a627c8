/**
 * Metric values beyond what the rollups' float8 sum of squares holds (decision 0470) are refused
 * at ingest with a specific error in the client's protocol and publish nothing; values at the
 * bounds are stored and rolled up exactly, on binary COPY and on the upsert path (a batch meeting
 * a stored event), through a real server, nats-server and PostgreSQL. Before the bound, 1e200
 * was accepted (202) and its batch then failed in PostgreSQL on the upsert path (quarantined).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { createSql, type Sql } from "../../src/db/client.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { post, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let nc: NatsConnection;
let sql: Sql;

beforeAll(async () => {
  nats = await startNats();
  const databaseUrl = await freshDatabase("range");
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    TELEMETRY_ROLES: "ingest,writer,api",
  });
  nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await nc?.close();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const storedMessages = async () => (await (await jetstreamManager(nc)).streams.info("TELEMETRY")).state.messages;

test("a metric value beyond 1e150 or below 1e-150 (not 0) is refused per record, naming the bound", async () => {
  const before = await storedMessages();
  const json = await post(server, [
    { device_id: "r-1", ts: BASE_TS, metrics: { v: 1e200 } },
    { device_id: "r-1", ts: BASE_TS + 1, metrics: { v: -1e-200 } },
  ]);
  expect(json.status).toBe(422);
  expect(json.body.results.map((r: any) => [r.status, r.errors[0].path, r.errors[0].message])).toEqual([
    ["rejected", "metrics.v", "metric values must be 0 or of magnitude between 1e-150 and 1e150"],
    ["rejected", "metrics.v", "metric values must be 0 or of magnitude between 1e-150 and 1e150"],
  ]);

  const lp = await fetch(`${server.url}/api/v2/write?org=o&bucket=b&precision=ms`, {
    method: "POST",
    headers: { authorization: `Token ${TEST_KEY}` },
    body: `cpu,host=r-2 v=1e200 ${BASE_TS}`,
  });
  expect(lp.status).toBe(400);
  expect(await lp.text()).toContain("between 1e-150 and 1e150");
  expect(await storedMessages()).toBe(before);
});

test("values at the bounds are stored and rolled up, on binary COPY and on the upsert path", async () => {
  const a = { device_id: "r-3", ts: BASE_TS, metrics: { big: 1e150, tiny: -1e-150 } };
  const first = await post(server, [a]);
  expect(first.status).toBe(202);
  const rollup = () =>
    sql`SELECT metric, count::int AS n, sum, sum_sq, min, max FROM readings_1m WHERE device_id = 'r-3' ORDER BY metric`;
  await check(async () => (await rollup()).length === 2, { what: "r-3's first rollups" });

  // a again with a new reading in the same minute: one broker message whose batch meets a stored event.
  const second = await post(server, [a, { device_id: "r-3", ts: BASE_TS + 1, metrics: { big: -1e150, tiny: 1e-150 } }]);
  expect(second.status).toBe(202);
  const rows = await check(
    async () => {
      const r = await rollup();
      return r[0]?.n === 2 && r;
    },
    { what: "r-3's rollups after the upsert path" },
  );
  expect([...rows]).toEqual([
    { metric: "big", n: 2, sum: 0, sum_sq: 1e150 * 1e150 + -1e150 * -1e150, min: -1e150, max: 1e150 },
    { metric: "tiny", n: 2, sum: 0, sum_sq: 1e-150 * 1e-150 + 1e-150 * 1e-150, min: -1e-150, max: 1e-150 },
  ]);
  const [readings] = await sql`SELECT count(*)::int AS n FROM readings WHERE device_id = 'r-3'`;
  expect(readings!.n).toBe(2);
  const [quarantined] = await sql`SELECT count(*)::int AS n FROM quarantine`;
  expect(quarantined!.n).toBe(0);
});
