/**
 * Device keys and provisioning against a real server (supervised nats-server with MQTT, real
 * PostgreSQL): a device key writes its own readings, a record of another device id is refused
 * with 403 device_mismatch and nothing reaches the stream, it cannot use the tenant API, a revoked
 * one is refused (through this process at once, through the CLI within the cache TTL); over MQTT
 * (mosquitto_pub) it publishes to its own device's topic only; a provisioning token is exchanged
 * once per device (409 after), registers the device within the cap (403 device_limit), and can do
 * nothing else; the CLI creates, lists and revokes device keys and provisioning tokens.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { createSql, type Sql } from "../../src/db/client.ts";
import { freePort } from "../../src/embedded/process.ts";
import { loadConfig } from "../../src/config/load.ts";
import { KeyCache } from "../../src/tenants/cache.ts";
import { createKey, createTenant } from "../../src/tenants/store.ts";
import { tenantDefaults } from "../../src/tenants/tenant.ts";
import { apiClient } from "../helpers/api.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase } from "../helpers/services.ts";
import { post, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

const root = `${import.meta.dir}/../..`;
const ADMIN = "admin-token-device-keys-0123";
let server: TestServer;
let sql: Sql;
let nc: NatsConnection;
let databaseUrl: string;
let mqttPort: number;
let clientSeq = 0;
const acme = () => apiClient(server, TEST_KEY);

const iso = (minutes: number) => new Date(BASE_TS + minutes * 60_000).toISOString();
const reading = (device: string, minutes: number) => ({ device_id: device, ts: iso(minutes), metrics: { v: minutes } });
const rows = async (tenant: string, device: string) =>
  (await sql`SELECT count(*)::int AS n FROM readings WHERE tenant = ${tenant} AND device_id = ${device}`)[0]!
    .n as number;
const streamMessages = async () => (await (await jetstreamManager(nc)).streams.info("TELEMETRY")).state.messages;

function mqttPub(o: { user: string; password: string; topic: string; message: string }) {
  const cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", String(mqttPort), "-q", "1", "-t", o.topic, "-m", o.message];
  cmd.push("-i", `dk-${process.pid}-${clientSeq++}`, "-u", o.user, "-P", o.password);
  const r = Bun.spawnSync({ cmd, stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  return { code: r.exitCode ?? -1, err: r.stderr.toString() };
}

function cli(args: string[]) {
  const r = Bun.spawnSync({
    cmd: [process.execPath, "src/cli/main.ts", ...args],
    cwd: root,
    env: { PATH: process.env.PATH!, DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

async function deviceKey(device: string): Promise<{ id: string; prefix: string; key: string }> {
  const r = await acme().post(`/api/v1/devices/${device}/keys`, { name: `${device} key` });
  expect(r.status).toBe(201);
  return r.body;
}

beforeAll(async () => {
  databaseUrl = await freshDatabase("devkeys");
  mqttPort = await freePort();
  server = await startTestServer({
    DATABASE_URL: databaseUrl,
    TELEMETRY_NATS_PORT: String(await freePort()),
    TELEMETRY_MQTT_PORT: String(mqttPort),
    TELEMETRY_MQTT_HOST: "127.0.0.1",
    TELEMETRY_AUTH_CACHE_TTL: "1s",
    TELEMETRY_ADMIN_TOKEN: ADMIN,
  });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
  nc = await connect({ servers: server.natsUrl });
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
});

describe("a device key over HTTP", () => {
  test("writes its own device's readings: 202 and rows", async () => {
    const k = await deviceKey("tracker-1");
    expect(k.key).toMatch(/^tk_/);
    const r = await post(server, [reading("tracker-1", 1), reading("tracker-1", 2)], { key: k.key });
    expect(r.status).toBe(202);
    expect(r.body.accepted).toBe(2);
    await check(async () => (await rows("acme", "tracker-1")) === 2, { what: "2 rows of tracker-1" });
    // The secret is stored as a hash only.
    const [stored] = await sql`SELECT hash, kind, device FROM api_keys WHERE id = ${k.id}`;
    expect(stored).toMatchObject({ kind: "device", device: "tracker-1" });
    expect(JSON.stringify(stored)).not.toContain(k.key);
  });

  test("a record of another device id: 403 device_mismatch, nothing published", async () => {
    const k = await deviceKey("tracker-2");
    const before = await streamMessages();
    for (const body of [[reading("tracker-2", 1), reading("tracker-9", 1)], reading("tracker-9", 1)]) {
      const r = await post(server, body, { key: k.key });
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("device_mismatch");
    }
    // NDJSON too, the mismatch in the last line.
    const nd = `${JSON.stringify(reading("tracker-2", 3))}\n${JSON.stringify(reading("other", 3))}\n`;
    const r = await post(server, nd, { key: k.key, raw: true, contentType: "application/x-ndjson" });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("device_mismatch");
    expect(await streamMessages()).toBe(before);
    expect(await rows("acme", "tracker-9")).toBe(0);
    // The tenant key still writes any device.
    expect((await post(server, reading("tracker-9", 1))).status).toBe(202);
  });

  test("cannot use the tenant API (403 key_not_allowed), listed with its scope", async () => {
    const k = await deviceKey("tracker-3");
    const as = apiClient(server, k.key);
    for (const r of [
      await as.get("/api/v1/devices"),
      await as.get("/api/v1/devices/tracker-3/keys"),
      await as.post("/api/v1/devices/tracker-3/keys"),
      await as.post("/api/v1/rules", { name: "x" }),
      await as.get("/api/v1/dashboard/devices"),
      await as.post("/api/v1/provision", { device_id: "new-1" }),
    ]) {
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("key_not_allowed");
    }
    const list = await acme().get("/api/v1/devices/tracker-3/keys");
    expect(list.status).toBe(200);
    expect(list.body.keys).toEqual([
      expect.objectContaining({ id: k.id, kind: "device", device: "tracker-3", revoked_at: null }),
    ]);
    expect(JSON.stringify(list.body)).not.toContain(k.key);
  });

  test("revoked through the API: 401 at once; another device's key cannot be revoked by its path", async () => {
    const k = await deviceKey("tracker-4");
    expect((await post(server, reading("tracker-4", 1), { key: k.key })).status).toBe(202);
    expect((await acme().del(`/api/v1/devices/tracker-5/keys/${k.id}`)).status).toBe(404);
    const revoked = await acme().del(`/api/v1/devices/tracker-4/keys/${k.prefix}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).not.toBeNull();
    const r = await post(server, reading("tracker-4", 2), { key: k.key });
    expect(r.status).toBe(401);
  });

  test("a bad device id in the path: 400 invalid_device_id", async () => {
    const r = await acme().post("/api/v1/devices/a*b/keys", {});
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("invalid_device_id");
  });
});

describe("a device key over MQTT", () => {
  test("publishes to its own topic; another device's topic lands nothing", async () => {
    const k = await deviceKey("mq-1");
    const topic = (device: string) => `tenant/acme/device/${device}/telemetry`;
    const message = JSON.stringify({ ts: iso(5), metrics: { v: 1 } });
    // The key store reaches nats-server's users within the sync interval (1 s here).
    await check(() => mqttPub({ user: k.prefix, password: k.key, topic: topic("mq-1"), message }).code === 0, {
      what: "the device key accepted over MQTT",
      timeoutMs: 20_000,
    });
    await check(async () => (await rows("acme", "mq-1")) >= 1, { what: "mq-1's reading stored", timeoutMs: 20_000 });
    mqttPub({ user: k.prefix, password: k.key, topic: topic("mq-2"), message });
    // A later message on its own topic is stored: the one before it had its chance to land.
    const later = JSON.stringify({ ts: iso(6), metrics: { v: 2 } });
    expect(mqttPub({ user: k.prefix, password: k.key, topic: topic("mq-1"), message: later }).code).toBe(0);
    await check(async () => (await rows("acme", "mq-1")) === 2, { what: "mq-1's second reading", timeoutMs: 20_000 });
    expect(await rows("acme", "mq-2")).toBe(0);
  }, 60_000);
});

describe("provisioning", () => {
  const provision = (token: string, device_id: string) =>
    apiClient(server, token).post("/api/v1/provision", { device_id });

  test("once per device, the provisioned key works, a second exchange is 409", async () => {
    const token = (await createKey(sql, "acme", "factory", { kind: "provision" }))!.key;
    const first = await provision(token, "new-1");
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ device_id: "new-1", registered: true });
    const second = await provision(token, "new-1");
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe("device_provisioned");
    expect((await post(server, reading("new-1", 1), { key: first.body.key })).status).toBe(202);
    expect((await post(server, reading("new-2", 1), { key: first.body.key })).body.error.code).toBe("device_mismatch");
    await check(async () => (await rows("acme", "new-1")) === 1, { what: "new-1's reading" });
    // The same token provisions other devices.
    expect((await provision(token, "new-2")).status).toBe(201);
    // Revoked, the device can be provisioned again.
    expect((await acme().del(`/api/v1/devices/new-1/keys/${first.body.key_id}`)).status).toBe(200);
    expect((await provision(token, "new-1")).status).toBe(201);
  });

  test("concurrent exchanges for one device: exactly one key", async () => {
    const token = (await createKey(sql, "acme", "race", { kind: "provision" }))!.key;
    const answers = await Promise.all(Array.from({ length: 5 }, () => provision(token, "race-1")));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409, 409]);
  });

  test("the token can do nothing else: no telemetry, no tenant API", async () => {
    const token = (await createKey(sql, "acme", "factory-2", { kind: "provision" }))!.key;
    const before = await streamMessages();
    const w = await post(server, reading("p-1", 1), { key: token });
    expect(w.status).toBe(403);
    expect(w.body.error.code).toBe("key_not_allowed");
    expect(await streamMessages()).toBe(before);
    const g = await apiClient(server, token).get("/api/v1/devices");
    expect(g.status).toBe(403);
    // A tenant key and a device key cannot provision.
    expect((await provision(TEST_KEY, "p-2")).body.error.code).toBe("key_not_allowed");
    expect(
      (await sql`SELECT mqtt_hash FROM api_keys WHERE kind = 'provision'`).every((r) => r.mqtt_hash === null),
    ).toBe(true);
  });

  test("registers the device under device_policy reject, within max_devices (403 device_limit)", async () => {
    await createTenant(sql, { id: "strict", device_policy: "reject", limits: { max_devices: 1 } } as never);
    const token = (await createKey(sql, "strict", "factory", { kind: "provision" }))!.key;
    const first = await provision(token, "s-1");
    expect(first.status).toBe(201);
    expect((await post(server, reading("s-1", 1), { key: first.body.key })).status).toBe(202);
    const full = await provision(token, "s-2");
    expect(full.status).toBe(403);
    expect(full.body.error.code).toBe("device_limit");
    expect((await sql`SELECT count(*)::int AS n FROM api_keys WHERE tenant = 'strict' AND kind = 'device'`)[0]!.n).toBe(
      1,
    );
  });

  test("bad bodies: 422 invalid_body", async () => {
    const token = (await createKey(sql, "acme", "factory-3", { kind: "provision" }))!.key;
    for (const body of [{}, { device_id: "a.b" }, { device_id: "x", extra: 1 }]) {
      const r = await apiClient(server, token).post("/api/v1/provision", body);
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe("invalid_body");
    }
  });
});

test("the key cache carries the kind and device, also for keys it loads at start (warm)", async () => {
  const device = (await createKey(sql, "acme", "warm", { kind: "device", device: "warm-1" }))!.key;
  const token = (await createKey(sql, "acme", "warm-p", { kind: "provision" }))!.key;
  const opts = { ttlMs: 60_000, defaults: tenantDefaults(loadConfig({}, {})), failuresPerMinute: 100 };
  const warmed = new KeyCache(sql, { ...opts, lookupsPerSecond: 100 });
  const cold = new KeyCache(sql, { ...opts, lookupsPerSecond: 100 });
  try {
    await warmed.warm();
    for (const cache of [warmed, cold]) {
      expect(await cache.resolve(device)).toMatchObject({ status: "ok", kind: "device", device: "warm-1" });
      expect(await cache.resolve(token)).toMatchObject({ status: "ok", kind: "provision", device: null });
      expect(await cache.resolve(TEST_KEY)).toMatchObject({ status: "ok", kind: "tenant", device: null });
    }
  } finally {
    await warmed.stop();
    await cold.stop();
  }
});

describe("the admin API", () => {
  test("creates a device key or a provisioning token; a device key needs its device", async () => {
    const admin = apiClient(server, ADMIN);
    const d = await admin.post("/admin/v1/tenants/acme/keys", { kind: "device", device: "adm-1" });
    expect(d.status).toBe(201);
    expect(d.body).toMatchObject({ kind: "device", device: "adm-1" });
    expect((await post(server, reading("adm-1", 1), { key: d.body.key })).status).toBe(202);
    expect((await post(server, reading("adm-2", 1), { key: d.body.key })).status).toBe(403);
    const p = await admin.post("/admin/v1/tenants/acme/keys", { kind: "provision" });
    expect(p.body).toMatchObject({ kind: "provision", device: null });
    for (const body of [{ kind: "device" }, { kind: "tenant", device: "x" }, { kind: "root" }]) {
      const r = await admin.post("/admin/v1/tenants/acme/keys", body);
      expect(r.status).toBe(422);
    }
  });
});

describe("the CLI", () => {
  test("keys create --device / --provisioning, keys list shows the scope, keys revoke: 401 within the TTL", async () => {
    const made = cli(["keys", "create", "acme", "--device", "cli-1", "--name", "cli", "--json"]);
    expect(made.code).toBe(0);
    const k = JSON.parse(made.out);
    expect(k).toMatchObject({ kind: "device", device: "cli-1" });
    expect((await post(server, reading("cli-1", 1), { key: k.key })).status).toBe(202);
    expect((await post(server, reading("cli-2", 1), { key: k.key })).status).toBe(403);

    const token = cli(["keys", "create", "acme", "--provisioning", "--json"]);
    expect(token.code).toBe(0);
    expect(JSON.parse(token.out).kind).toBe("provision");
    expect(cli(["keys", "create", "acme", "--device", "a b"]).code).not.toBe(0);
    expect(cli(["keys", "create", "acme", "--device", "x", "--provisioning"]).code).not.toBe(0);

    const list = cli(["keys", "list", "acme"]);
    expect(list.code).toBe(0);
    expect(list.out).toContain(`${k.prefix}\tdevice cli-1\t"cli"`);
    expect(list.out).toContain("\tprovision\t");
    expect(list.out).not.toContain(k.key);

    expect(cli(["keys", "revoke", k.prefix]).code).toBe(0);
    // Revoked in the database, not through this process: refused after the cache's re-read (TTL 1 s).
    await check(async () => (await post(server, reading("cli-1", 2), { key: k.key })).status === 401, {
      what: "the revoked device key refused",
      timeoutMs: 5_000,
    });
  }, 60_000);
});
