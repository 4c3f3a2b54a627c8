/**
 * The evaluator never holds up ingestion or the writer: with its own database role locked out,
 * readings keep being accepted and committed at full pace, and the alerts they should raise
 * appear once it can connect again. Also: an opened alert reaches a signed webhook.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { verifySignature } from "../../src/notify/signing.ts";
import { apiClient } from "../helpers/api.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let admin: Sql;
let receiver: ReturnType<typeof Bun.serve>;
const received: Array<{ body: string; headers: Headers }> = [];
const role = `evaluator_${process.pid}`;

beforeAll(async () => {
  nats = await startNats();
  const url = await freshDatabase("isolation");
  admin = createSql(url, { max: 2, name: "test-admin" });
  await admin.unsafe(`CREATE ROLE ${role} LOGIN SUPERUSER`).catch(() => {});
  const evaluatorUrl = url.replace("postgres://postgres@", `postgres://${role}@`);
  receiver = Bun.serve({
    port: 0,
    async fetch(req) {
      received.push({ body: await req.text(), headers: req.headers });
      return new Response("ok");
    },
  });
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: url,
    TELEMETRY_EVALUATOR_DATABASE_URL: evaluatorUrl,
    TELEMETRY_DELIVERY_SCHEDULE: "0,100ms,200ms",
    TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1",
  });
}, 60_000);

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
  await admin?.unsafe(`ALTER ROLE ${role} LOGIN`).catch(() => {});
  await admin?.end();
  receiver?.stop(true);
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const T0 = Date.UTC(2026, 6, 1);

test("an opened alert is delivered to a webhook, signed", async () => {
  const api = apiClient(server);
  const channel = (
    await api.post("/api/v1/channels", { name: "ops", kind: "webhook", url: `http://127.0.0.1:${receiver.port}/hook` })
  ).body;
  expect(channel.secret.length).toBeGreaterThanOrEqual(16);
  await api.createRule({
    name: "hot",
    metric: "temp",
    condition: { type: "above_threshold", threshold: 100 },
    cooldown_seconds: 0,
  });
  await api.ingest([{ device_id: "boiler-1", ts: T0, metrics: { temp: 120 } }]);
  const hit = await check(() => received.find((r) => JSON.parse(r.body).event === "alert.opened"), {
    what: "a webhook delivery",
  });
  expect(verifySignature(channel.secret, hit.body, hit.headers, Math.floor(Date.now() / 1000))).toBe(true);
  expect(JSON.parse(hit.body).alert).toMatchObject({ device_id: "boiler-1", value: 120, kind: "above_threshold" });
});

test("the evaluator's database locked out: ingest and the writer go on, alerts resume afterwards", async () => {
  const api = apiClient(server);
  await admin.unsafe(`ALTER ROLE ${role} NOLOGIN`);
  await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${role}`;
  try {
    const readings = Array.from({ length: 2_000 }, (_, i) => ({
      device_id: `boiler-${2 + (i % 20)}`,
      ts: T0 + 60_000 + i * 1_000,
      metrics: { temp: 50 },
    }));
    readings[1_999] = { ...readings[1_999]!, metrics: { temp: 150 } }; // the last reading of boiler-21 is hot
    const started = Date.now();
    for (let i = 0; i < readings.length; i += 250) await api.ingest(readings.slice(i, i + 250));
    const stored = async () =>
      Number((await admin`SELECT count(*)::int AS n FROM readings WHERE device_id <> 'boiler-1'`)[0]!.n);
    await check(async () => (await stored()) === 2_000, {
      what: "the writer to commit every reading",
      timeoutMs: 15_000,
    });
    const writerSeconds = (Date.now() - started) / 1000;
    await check(() => !server.evaluator!.stats.healthy && server.evaluator!.stats.errors > 0, {
      what: "the evaluator to notice",
    });
    expect(server.writer!.healthy).toBe(true);
    expect(writerSeconds).toBeLessThan(15);
    expect((await admin`SELECT count(*)::int AS n FROM alerts WHERE device_id = 'boiler-21'`)[0]!.n).toBe(0);
  } finally {
    await admin.unsafe(`ALTER ROLE ${role} LOGIN`);
  }
  const [alert] = await check(
    async () => {
      const a = await api.alerts("device=boiler-21");
      return a.length > 0 && a;
    },
    { what: "the missed alert after recovery", timeoutMs: 30_000 },
  );
  expect(alert.value).toBe(150);
  expect(server.evaluator!.stats.healthy).toBe(true);
});
