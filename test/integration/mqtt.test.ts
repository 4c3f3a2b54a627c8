/**
 * MQTT ingest through the supervised nats-server's MQTT listener, with a real MQTT client
 * (mosquitto_pub): QoS 0 and 1 land exactly once, a redelivered message makes no second row,
 * invalid payloads are quarantined with a reason while their valid records go on, wrong or
 * missing credentials are refused, a key cannot publish into another tenant's topics, a revoked
 * key stops working, and MQTT readings trigger rules like HTTP ones.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { freePort } from "../../src/embedded/process.ts";
import { createKey } from "../../src/tenants/store.ts";
import { apiClient } from "../helpers/api.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase } from "../helpers/services.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

let server: TestServer;
let sql: Sql;
let mqttPort: number;
let acme: { user: string; key: string };
let clientSeq = 0;

function mqttPub(o: { user?: string; password?: string; topic: string; message: string; qos?: 0 | 1 }): { code: number; err: string } {
  const cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", String(mqttPort), "-q", String(o.qos ?? 1), "-t", o.topic, "-m", o.message, "-i", `test-${process.pid}-${clientSeq++}`];
  if (o.user) cmd.push("-u", o.user);
  if (o.password) cmd.push("-P", o.password);
  const r = Bun.spawnSync({ cmd, stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  return { code: r.exitCode ?? -1, err: r.stderr.toString() };
}

const topic = (tenant: string, device: string) => `tenant/${tenant}/device/${device}/telemetry`;
const rows = async (tenant: string, device?: string) =>
  (await sql`SELECT count(*)::int AS n FROM readings WHERE tenant = ${tenant} ${device ? sql`AND device_id = ${device}` : sql``}`)[0]!.n as number;
const iso = (minutes: number) => new Date(BASE_TS + minutes * 60_000).toISOString();

beforeAll(async () => {
  const databaseUrl = await freshDatabase("mqtt");
  mqttPort = await freePort();
  server = await startTestServer({
    DATABASE_URL: databaseUrl,
    TELEMETRY_NATS_PORT: String(await freePort()),
    TELEMETRY_MQTT_PORT: String(mqttPort),
    TELEMETRY_MQTT_HOST: "127.0.0.1",
    TELEMETRY_AUTH_CACHE_TTL: "1s",
  });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
  const created = (await createKey(sql, "acme", "trackers"))!;
  acme = { user: created.row.prefix, key: created.key };
  // The key store reaches nats-server's users within the sync interval (1 s here).
  await check(() => mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "probe"), message: JSON.stringify({ ts: iso(0), metrics: { v: 0 } }) }).code === 0, {
    what: "the new key accepted over MQTT",
    timeoutMs: 20_000,
  });
  await check(async () => (await rows("acme", "probe")) === 1, { what: "the probe reading stored", timeoutMs: 20_000 });
}, 120_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
});

test("QoS 1 and QoS 0, one record or an array: each reading stored once, device from the topic", async () => {
  expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "truck-1"), message: JSON.stringify({ ts: iso(1), location: { lat: 52.520008123, lon: 13.404954 }, metrics: { speed: 42.5 } }) }).code).toBe(0);
  const array = [
    { ts: iso(2), metrics: { speed: 40 } },
    { device_id: "truck-1", ts: iso(3), metrics: { speed: 38 } },
  ];
  expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "truck-1"), message: JSON.stringify(array), qos: 0 }).code).toBe(0);
  await check(async () => (await rows("acme", "truck-1")) === 3, { what: "3 readings of truck-1", timeoutMs: 20_000 });
  const [first] = await sql`SELECT lat, metrics FROM readings WHERE tenant = 'acme' AND device_id = 'truck-1' ORDER BY ts LIMIT 1`;
  expect(first!.lat).toBe(52.5200081); // normalized like HTTP: 7 decimals
  expect(first!.metrics).toEqual({ speed: 42.5 });
});

test("the same message again (a QoS 1 redelivery) makes no second row", async () => {
  const message = JSON.stringify({ ts: iso(10), metrics: { speed: 10 } });
  for (let i = 0; i < 3; i++) expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "truck-2"), message }).code).toBe(0);
  // A later message on the same device shows the bridge got past the copies.
  expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "truck-2"), message: JSON.stringify({ ts: iso(11), metrics: { speed: 11 } }) }).code).toBe(0);
  await check(async () => (await rows("acme", "truck-2")) === 2, { what: "2 distinct readings of truck-2", timeoutMs: 20_000 });
  const pending = await server.broker.jsm.consumers.info("TELEMETRY_MQTT", "mqtt");
  expect(pending.num_pending + pending.num_ack_pending).toBe(0);
  expect(await rows("acme", "truck-2")).toBe(2);
});

test("invalid payloads are quarantined with a reason; valid records of the same message go on", async () => {
  const pub = (device: string, message: string) => expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", device), message }).code).toBe(0);
  pub("bad-1", "not json at all");
  pub("bad-2", JSON.stringify([{ ts: iso(20), metrics: { temp: 20 } }, { ts: iso(21), metrics: { temp: "hot" } }]));
  pub("bad-3", JSON.stringify({ device_id: "someone-else", ts: iso(22), metrics: { temp: 1 } }));
  pub("bad-4", JSON.stringify({ ts: "yesterday", metrics: { temp: 1 } }));
  const q = await check(
    async () => {
      const r = await sql`SELECT subject, reason, payload FROM quarantine WHERE source = 'mqtt' ORDER BY id`;
      return r.length === 4 && r;
    },
    { what: "4 quarantined MQTT messages", timeoutMs: 20_000 },
  );
  expect(q.map((r) => r.subject)).toEqual(["bad-1", "bad-2", "bad-3", "bad-4"].map((d) => `tenant.acme.device.${d}.telemetry`));
  expect(q[0]!.reason).toContain("not JSON");
  expect(q[0]!.payload).toBe("not json at all");
  expect(q[1]!.reason).toMatch(/^record 1: metrics\.temp: /);
  expect(q[2]!.reason).toContain("device_id: must be the topic's device (bad-3)");
  expect(q[3]!.reason).toMatch(/^record 0: ts: /);
  await check(async () => (await rows("acme", "bad-2")) === 1, { what: "the valid record of bad-2", timeoutMs: 20_000 });
  expect(await rows("acme", "bad-3")).toBe(0);
  expect(await rows("acme", "someone-else")).toBe(0);
});

test("wrong or missing credentials are refused; a key cannot publish into another tenant's topics", async () => {
  const message = JSON.stringify({ ts: iso(30), metrics: { v: 1 } });
  expect(mqttPub({ user: acme.user, password: "tk_wrong", topic: topic("acme", "x"), message }).code).not.toBe(0);
  expect(mqttPub({ topic: topic("acme", "x"), message }).code).not.toBe(0);
  expect(mqttPub({ user: "telemetry-internal", password: "loopback-only-not-a-secret", topic: topic("acme", "x"), message }).code).not.toBe(0);
  // Accepted by the MQTT session, refused by the user's permissions: nothing reaches beta.
  mqttPub({ user: acme.user, password: acme.key, topic: topic("beta", "intruder"), message });
  mqttPub({ user: acme.user, password: acme.key, topic: "tenant.acme.device.x.telemetry", message }); // not a device topic in MQTT terms
  expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "after"), message }).code).toBe(0);
  await check(async () => (await rows("acme", "after")) === 1, { what: "the message after the refused ones", timeoutMs: 20_000 });
  expect(await rows("beta")).toBe(0);
  const { state } = await server.broker.jsm.streams.info("TELEMETRY_MQTT", { subjects_filter: "tenant.beta.>" });
  expect(state.subjects ?? {}).toEqual({});
});

test("MQTT readings trigger rules like HTTP ones", async () => {
  const api = apiClient(server);
  await api.createRule({ name: "too fast", metric: "speed", condition: { type: "above_threshold", threshold: 100 }, cooldown_seconds: 0 });
  expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "racer"), message: JSON.stringify({ ts: iso(40), metrics: { speed: 180 } }) }).code).toBe(0);
  const alerts = await check(
    async () => {
      const r = await sql`SELECT device_id, status FROM alerts WHERE tenant = 'acme'`;
      return r.length > 0 && r;
    },
    { what: "an alert from an MQTT reading", timeoutMs: 30_000 },
  );
  expect(alerts.map((a) => [a.device_id, a.status])).toEqual([["racer", "open"]]);
});

test("a revoked key is refused over MQTT within the sync interval", async () => {
  await sql`UPDATE api_keys SET revoked_at = now() WHERE prefix = ${acme.user}`;
  await check(() => mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "late"), message: JSON.stringify({ ts: iso(50), metrics: { v: 1 } }) }).code !== 0, {
    what: "the revoked key refused",
    timeoutMs: 20_000,
  });
});
