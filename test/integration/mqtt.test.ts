/**
 * MQTT ingest through the supervised nats-server's MQTT listener, with a real MQTT client
 * (mosquitto_pub): QoS 0 and 1 land exactly once, a redelivered message makes no second row,
 * invalid payloads are quarantined with a reason while their valid records go on, wrong or
 * missing credentials are refused, a key cannot publish into another tenant's topics, a revoked
 * key stops working, and MQTT readings trigger rules like HTTP ones. The tenant's device policy
 * applies (a refused device's message is quarantined with the reason), rate limits hold MQTT
 * messages back without losing any, and `telemetry mqtt users` prints the users without keys.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSql, type Sql } from "../../src/db/client.ts";
import { freePort } from "../../src/embedded/process.ts";
import { createKey, createTenant } from "../../src/tenants/store.ts";
import { apiClient } from "../helpers/api.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase } from "../helpers/services.ts";
import { OTHER_KEY, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

let server: TestServer;
let sql: Sql;
let databaseUrl: string;
const rawKeys: string[] = [TEST_KEY, OTHER_KEY];
let mqttPort: number;
let acme: { user: string; key: string };
let clientSeq = 0;

function mqttPub(o: { user?: string; password?: string; topic: string; message: string; qos?: 0 | 1 }): {
  code: number;
  err: string;
} {
  const cmd = [
    "mosquitto_pub",
    "-h",
    "127.0.0.1",
    "-p",
    String(mqttPort),
    "-q",
    String(o.qos ?? 1),
    "-t",
    o.topic,
    "-m",
    o.message,
    "-i",
    `test-${process.pid}-${clientSeq++}`,
  ];
  if (o.user) cmd.push("-u", o.user);
  if (o.password) cmd.push("-P", o.password);
  const r = Bun.spawnSync({ cmd, stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  return { code: r.exitCode ?? -1, err: r.stderr.toString() };
}

const topic = (tenant: string, device: string) => `tenant/${tenant}/device/${device}/telemetry`;
const rows = async (tenant: string, device?: string) =>
  (
    await sql`SELECT count(*)::int AS n FROM readings WHERE tenant = ${tenant} ${device ? sql`AND device_id = ${device}` : sql``}`
  )[0]!.n as number;
const iso = (minutes: number) => new Date(BASE_TS + minutes * 60_000).toISOString();

beforeAll(async () => {
  databaseUrl = await freshDatabase("mqtt");
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
  rawKeys.push(created.key);
  // The key store reaches nats-server's users within the sync interval (1 s here).
  await check(
    () =>
      mqttPub({
        user: acme.user,
        password: acme.key,
        topic: topic("acme", "probe"),
        message: JSON.stringify({ ts: iso(0), metrics: { v: 0 } }),
      }).code === 0,
    {
      what: "the new key accepted over MQTT",
      timeoutMs: 20_000,
    },
  );
  await check(async () => (await rows("acme", "probe")) === 1, { what: "the probe reading stored", timeoutMs: 20_000 });
}, 120_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
});

test("QoS 1 and QoS 0, one record or an array: each reading stored once, device from the topic", async () => {
  expect(
    mqttPub({
      user: acme.user,
      password: acme.key,
      topic: topic("acme", "truck-1"),
      message: JSON.stringify({
        ts: iso(1),
        location: { lat: 52.520008123, lon: 13.404954 },
        metrics: { speed: 42.5 },
      }),
    }).code,
  ).toBe(0);
  const array = [
    { ts: iso(2), metrics: { speed: 40 } },
    { device_id: "truck-1", ts: iso(3), metrics: { speed: 38 } },
  ];
  expect(
    mqttPub({
      user: acme.user,
      password: acme.key,
      topic: topic("acme", "truck-1"),
      message: JSON.stringify(array),
      qos: 0,
    }).code,
  ).toBe(0);
  await check(async () => (await rows("acme", "truck-1")) === 3, { what: "3 readings of truck-1", timeoutMs: 20_000 });
  const [first] =
    await sql`SELECT lat, metrics FROM readings WHERE tenant = 'acme' AND device_id = 'truck-1' ORDER BY ts LIMIT 1`;
  expect(first!.lat).toBe(52.5200081); // normalized like HTTP: 7 decimals
  expect(first!.metrics).toEqual({ speed: 42.5 });
});

test("the same message again (a QoS 1 redelivery) makes no second row", async () => {
  const message = JSON.stringify({ ts: iso(10), metrics: { speed: 10 } });
  for (let i = 0; i < 3; i++)
    expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "truck-2"), message }).code).toBe(0);
  // A later message on the same device shows the bridge got past the copies.
  expect(
    mqttPub({
      user: acme.user,
      password: acme.key,
      topic: topic("acme", "truck-2"),
      message: JSON.stringify({ ts: iso(11), metrics: { speed: 11 } }),
    }).code,
  ).toBe(0);
  await check(async () => (await rows("acme", "truck-2")) === 2, {
    what: "2 distinct readings of truck-2",
    timeoutMs: 20_000,
  });
  const pending = await server.broker.jsm.consumers.info("TELEMETRY_MQTT", "mqtt");
  expect(pending.num_pending + pending.num_ack_pending).toBe(0);
  expect(await rows("acme", "truck-2")).toBe(2);
});

test("invalid payloads are quarantined with a reason; valid records of the same message go on", async () => {
  const pub = (device: string, message: string) =>
    expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", device), message }).code).toBe(0);
  pub("bad-1", "not json at all");
  pub(
    "bad-2",
    JSON.stringify([
      { ts: iso(20), metrics: { temp: 20 } },
      { ts: iso(21), metrics: { temp: "hot" } },
    ]),
  );
  pub("bad-3", JSON.stringify({ device_id: "someone-else", ts: iso(22), metrics: { temp: 1 } }));
  pub("bad-4", JSON.stringify({ ts: "yesterday", metrics: { temp: 1 } }));
  const q = await check(
    async () => {
      const r = await sql`SELECT subject, reason, payload FROM quarantine WHERE source = 'mqtt' ORDER BY id`;
      return r.length === 4 && r;
    },
    { what: "4 quarantined MQTT messages", timeoutMs: 20_000 },
  );
  expect(q.map((r) => r.subject)).toEqual(
    ["bad-1", "bad-2", "bad-3", "bad-4"].map((d) => `tenant.acme.device.${d}.telemetry`),
  );
  expect(q[0]!.reason).toContain("not JSON");
  expect(q[0]!.payload).toBe("not json at all");
  expect(q[1]!.reason).toMatch(/^record 1: metrics\.temp: /);
  expect(q[2]!.reason).toContain("device_id: must be the topic's device (bad-3)");
  expect(q[3]!.reason).toMatch(/^record 0: ts: /);
  await check(async () => (await rows("acme", "bad-2")) === 1, {
    what: "the valid record of bad-2",
    timeoutMs: 20_000,
  });
  expect(await rows("acme", "bad-3")).toBe(0);
  expect(await rows("acme", "someone-else")).toBe(0);
});

test("wrong or missing credentials are refused; a key cannot publish into another tenant's topics", async () => {
  const message = JSON.stringify({ ts: iso(30), metrics: { v: 1 } });
  expect(mqttPub({ user: acme.user, password: "tk_wrong", topic: topic("acme", "x"), message }).code).not.toBe(0);
  expect(mqttPub({ topic: topic("acme", "x"), message }).code).not.toBe(0);
  expect(
    mqttPub({ user: "telemetry-internal", password: "loopback-only-not-a-secret", topic: topic("acme", "x"), message })
      .code,
  ).not.toBe(0);
  // Accepted by the MQTT session, refused by the user's permissions: nothing reaches beta.
  mqttPub({ user: acme.user, password: acme.key, topic: topic("beta", "intruder"), message });
  mqttPub({ user: acme.user, password: acme.key, topic: "tenant.acme.device.x.telemetry", message }); // not a device topic in MQTT terms
  expect(mqttPub({ user: acme.user, password: acme.key, topic: topic("acme", "after"), message }).code).toBe(0);
  await check(async () => (await rows("acme", "after")) === 1, {
    what: "the message after the refused ones",
    timeoutMs: 20_000,
  });
  expect(await rows("beta")).toBe(0);
  const { state } = await server.broker.jsm.streams.info("TELEMETRY_MQTT", { subjects_filter: "tenant.beta.>" });
  expect(state.subjects ?? {}).toEqual({});
});

test("MQTT readings trigger rules like HTTP ones", async () => {
  const api = apiClient(server);
  await api.createRule({
    name: "too fast",
    metric: "speed",
    condition: { type: "above_threshold", threshold: 100 },
    cooldown_seconds: 0,
  });
  expect(
    mqttPub({
      user: acme.user,
      password: acme.key,
      topic: topic("acme", "racer"),
      message: JSON.stringify({ ts: iso(40), metrics: { speed: 180 } }),
    }).code,
  ).toBe(0);
  const alerts = await check(
    async () => {
      const r = await sql`SELECT device_id, status FROM alerts WHERE tenant = 'acme'`;
      return r.length > 0 && r;
    },
    { what: "an alert from an MQTT reading", timeoutMs: 30_000 },
  );
  expect(alerts.map((a) => [a.device_id, a.status])).toEqual([["racer", "open"]]);
});

/** A tenant of its own with one key that nats-server already accepts. */
async function tenantWithKey(input: Parameters<typeof createTenant>[1]) {
  await createTenant(sql, input);
  const created = (await createKey(sql, input.id, "mqtt"))!;
  rawKeys.push(created.key);
  const pub = (device: string, minute: number) =>
    mqttPub({
      user: created.row.prefix,
      password: created.key,
      topic: topic(input.id, device),
      message: JSON.stringify({ ts: iso(minute), metrics: { n: minute } }),
    });
  return { key: created.key, pub };
}

async function delayedTotal(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return [...text.matchAll(/^telemetry_mqtt_delayed_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

test("device policy reject: an unknown device's message is quarantined with the reason; a registered device's is stored", async () => {
  const locked = await tenantWithKey({ id: "locked", device_policy: "reject", limits: {} });
  expect((await apiClient(server, locked.key).post("/api/v1/devices", { device_id: "known-1" })).status).toBe(201);
  await check(() => locked.pub("known-1", 60).code === 0, {
    what: "the locked tenant's key accepted over MQTT",
    timeoutMs: 20_000,
  });
  expect(locked.pub("stranger", 61).code).toBe(0);
  expect(locked.pub("known-1", 62).code).toBe(0);
  await check(async () => (await rows("locked", "known-1")) === 2, {
    what: "both readings of the registered device",
    timeoutMs: 20_000,
  });
  const q = await check(
    async () => {
      const r =
        await sql`SELECT reason, payload FROM quarantine WHERE source = 'mqtt' AND subject = 'tenant.locked.device.stranger.telemetry'`;
      return r.length === 1 && r;
    },
    { what: "the unknown device's message quarantined", timeoutMs: 20_000 },
  );
  expect(q[0]!.reason).toStartWith("unknown_device: unknown device; register it first");
  expect(JSON.parse(q[0]!.payload).ts).toBe(iso(61));
  expect(await rows("locked", "stranger")).toBe(0);
});

test("over the tenant's rate limit: MQTT messages wait in the stream and all land exactly once, at the limit's pace", async () => {
  const rate = 2;
  const burst = 2;
  const slow = await tenantWithKey({ id: "slow", device_policy: "auto", limits: { rate_per_second: rate, burst } });
  await check(() => slow.pub("probe", 0).code === 0, {
    what: "the slow tenant's key accepted over MQTT",
    timeoutMs: 20_000,
  });
  await check(async () => (await rows("slow", "probe")) === 1, { what: "the probe reading", timeoutMs: 20_000 });
  await Bun.sleep(1_100); // the tenant's bucket is full again: `burst` tokens
  const delayedBefore = await delayedTotal();
  const n = 8;
  const startedAt = Date.now();
  for (let i = 1; i <= n; i++) expect(slow.pub(`s-${i % 2}`, 100 + i).code).toBe(0);
  await check(async () => (await rows("slow")) === n + 1, {
    what: `all ${n} readings over the limit stored`,
    timeoutMs: 60_000,
    intervalMs: 25,
  });
  const tookMs = Date.now() - startedAt;
  // From a full bucket, n records need (n - burst) / rate seconds: nothing got through faster.
  expect(tookMs).toBeGreaterThanOrEqual(((n - burst) / rate) * 1_000);
  expect(await delayedTotal()).toBeGreaterThan(delayedBefore);
  await check(
    async () => {
      const c = await server.broker.jsm.consumers.info("TELEMETRY_MQTT", "mqtt");
      return c.num_pending + c.num_ack_pending === 0;
    },
    { what: "nothing left waiting in the MQTT stream", timeoutMs: 10_000 },
  );
  const [stored] =
    await sql`SELECT count(*)::int AS n, count(DISTINCT ts)::int AS distinct_ts FROM readings WHERE tenant = 'slow' AND device_id LIKE 's-%'`;
  expect(stored).toEqual({ n, distinct_ts: n });
  expect((await sql`SELECT count(*)::int AS n FROM quarantine WHERE subject LIKE 'tenant.slow.%'`)[0]!.n).toBe(0);
  // Waiting messages are bounded: a full MQTT stream refuses new messages rather than dropping stored ones.
  const { config } = await server.broker.jsm.streams.info("TELEMETRY_MQTT");
  expect([config.max_bytes, config.discard]).toEqual([1024 ** 3, "new"]);
}, 90_000);

test("`telemetry mqtt users` prints the users block: key prefixes and bcrypt hashes, never a key; nats-server accepts it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "telemetry-mqtt-users-"));
  try {
    const cli = (...args: string[]) =>
      Bun.spawnSync({
        cmd: [process.execPath, "src/cli/main.ts", "mqtt", "users", "--database-url", databaseUrl, ...args],
        env: { PATH: process.env.PATH!, LOG_LEVEL: "warn" },
        stdout: "pipe",
        stderr: "pipe",
      });
    const printed = cli();
    expect(printed.exitCode).toBe(0);
    const text = printed.stdout.toString();
    const expected =
      await sql`SELECT k.prefix, k.mqtt_hash FROM api_keys k JOIN tenants t ON t.id = k.tenant WHERE k.revoked_at IS NULL AND k.mqtt_hash IS NOT NULL AND t.status = 'active'`;
    expect(expected.length).toBeGreaterThanOrEqual(3);
    for (const k of expected)
      expect(text).toContain(
        `{ user: ${JSON.stringify(k.prefix)}, password: ${JSON.stringify(k.mqtt_hash)}, allowed_connection_types: ["MQTT"]`,
      );
    expect(text).toContain('allow: ["tenant.locked.device.*.telemetry"]');
    for (const key of rawKeys) expect(text).not.toContain(key);
    expect(text).not.toContain("telemetry-internal"); // its password is public: not for a server of one's own
    expect(text).toContain("No user for telemetry's own connections");

    const out = join(dir, "users.conf");
    const hash = Bun.password.hashSync("service-password", { algorithm: "bcrypt", cost: 4 });
    expect(cli("--out", out, "--internal-user", "svc", "--internal-password-hash", hash).exitCode).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const refused = cli("--internal-user", "svc", "--internal-password-hash", "service-password");
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stdout.toString()).toBe("");
    // An operator's nats-server with an MQTT listener includes it: nats-server parses it.
    const conf = join(dir, "nats.conf");
    writeFileSync(
      conf,
      `listen: "127.0.0.1:14999"\nserver_name: "ops"\njetstream { store_dir: ${JSON.stringify(join(dir, "js"))} }\nmqtt { listen: "127.0.0.1:18999" }\ninclude "users.conf"\n`,
    );
    const parsed = Bun.spawnSync({ cmd: ["nats-server", "-c", conf, "-t"], stdout: "pipe", stderr: "pipe" });
    expect(parsed.exitCode, parsed.stderr.toString() + parsed.stdout.toString()).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a revoked key is refused over MQTT within the sync interval", async () => {
  await sql`UPDATE api_keys SET revoked_at = now() WHERE prefix = ${acme.user}`;
  await check(
    () =>
      mqttPub({
        user: acme.user,
        password: acme.key,
        topic: topic("acme", "late"),
        message: JSON.stringify({ ts: iso(50), metrics: { v: 1 } }),
      }).code !== 0,
    {
      what: "the revoked key refused",
      timeoutMs: 20_000,
    },
  );
});
