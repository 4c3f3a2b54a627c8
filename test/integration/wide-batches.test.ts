/**
 * A writer batch whose committed-batch summary exceeds nats-server's max_payload (1 MiB): 400
 * devices with 100 metrics each in one batch. The summary goes out in parts, so the batch is
 * acked and evaluated instead of its announcement being retried forever.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { apiClient } from "../helpers/api.ts";
import { BASE_TS } from "../helpers/data.ts";
import { post, startTestServer, type TestServer } from "../helpers/server.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;

beforeAll(async () => {
  nats = await startNats();
  const url = await freshDatabase("wide");
  // One batch: the flush waits 2 s, and 400 messages are under the batch's message cap.
  server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: url, TELEMETRY_FLUSH_INTERVAL: "2s" });
  sql = createSql(url, { max: 1, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

test("a batch whose summary is over 1 MiB is announced in parts, acked and evaluated", async () => {
  await apiClient(server).createRule({
    name: "m0 high",
    metric: "m0",
    condition: { type: "above_threshold", threshold: 1000 },
    cooldown_seconds: 0,
  });
  const records = Array.from({ length: 400 }, (_, d) => ({
    device_id: `wide-${d}`,
    ts: BASE_TS,
    metrics: Object.fromEntries(
      Array.from({ length: 100 }, (_, k) => [`m${k}`, k === 0 && d === 7 ? 5000 : d + k / 100]),
    ),
  }));
  expect((await post(server, records)).status).toBe(202);
  await check(async () => (await sql`SELECT count(*)::int AS n FROM readings`)[0]!.n === 400, {
    what: "400 rows",
    timeoutMs: 30_000,
  });
  await check(
    async () => {
      const w = await server.broker.jsm.consumers.info("TELEMETRY", "writer");
      return w.num_pending + w.num_ack_pending === 0;
    },
    { what: "the writer's messages acked", timeoutMs: 30_000 },
  );
  const events = (await server.broker.jsm.streams.info("TELEMETRY_COMMITTED")).state;
  expect(events.messages).toBeGreaterThan(2); // one batch's summary, in parts of at most 512 KiB
  expect(events.bytes / events.messages).toBeLessThan(600 * 1024);
  await check(async () => (await sql`SELECT device_id FROM alerts`).map((r) => r.device_id).join() === "wide-7", {
    what: "the alert on wide-7",
    timeoutMs: 30_000,
  });
}, 120_000);
