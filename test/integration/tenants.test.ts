/**
 * Tenants and keys against real nats-server and PostgreSQL: keys shown once and stored only as
 * hashes, revocation and suspension (admin API at once, CLI within the cache TTL), the admin
 * token, the CLI, and ingest with known keys through a PostgreSQL outage.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { createSql } from "../../src/db/client.ts";
import { findPostgresBinDir } from "../../src/embedded/postgres.ts";
import { hashKey } from "../../src/tenants/keys.ts";
import { createKey } from "../../src/tenants/store.ts";
import { apiClient } from "../helpers/api.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats, startPostgres } from "../helpers/services.ts";
import { OTHER_KEY, post, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

const ROOT = resolve(import.meta.dir, "../..");
const ADMIN = "admin-token-0123456789abcdef";
const TTL_MS = 2_000;

let nats: Awaited<ReturnType<typeof startNats>>;
let databaseUrl: string;
let server: TestServer;

beforeAll(async () => {
  nats = await startNats();
  databaseUrl = await freshDatabase("tenants");
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    TELEMETRY_ADMIN_TOKEN: ADMIN,
    TELEMETRY_AUTH_CACHE_TTL: `${TTL_MS}ms`,
  });
}, 60_000);

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const admin = () => apiClient(server, ADMIN);
let seq = 0;
const record = (device = "truck-1") => ({ device_id: device, ts: BASE_TS + ++seq, metrics: { temp: 20 } });
const ingest = (key: string, device?: string) => post(server, [record(device)], { key });

function cli(...args: string[]) {
  const r = Bun.spawnSync({
    cmd: [process.execPath, "src/cli/main.ts", ...args, "--database-url", databaseUrl],
    cwd: ROOT,
    env: { PATH: process.env.PATH!, LOG_LEVEL: "warn" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = r.stdout.toString();
  return { code: r.exitCode, out, err: r.stderr.toString(), json: () => JSON.parse(out) };
}

/** Polls until `fn` holds and returns how long that took. */
async function within(fn: () => Promise<boolean>, what: string): Promise<number> {
  const t0 = Date.now();
  await check(fn, { what, timeoutMs: TTL_MS + 3_000, intervalMs: 100 });
  return Date.now() - t0;
}

describe("admin API", () => {
  test("needs the admin token: none, a wrong one or a tenant key get 401", async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: "Bearer wrong-admin-token-000000" },
      { authorization: `Bearer ${TEST_KEY}` },
      { authorization: ADMIN },
    ];
    for (const headers of attempts) {
      const res = await fetch(`${server.url}/admin/v1/tenants`, { headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.code).toBe("unauthenticated");
    }
    const ok = await admin().get("/admin/v1/tenants");
    expect(ok.status).toBe(200);
    expect(ok.body.tenants.map((t: { id: string }) => t.id)).toEqual(["acme", "beta"]); // from TELEMETRY_API_KEYS
  });

  test("a key is shown once, listed without it, and stored only as its SHA-256", async () => {
    const created = await admin().post("/admin/v1/tenants", {
      id: "gamma",
      name: "Gamma",
      limits: { device_burst: 500 },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: "gamma",
      name: "Gamma",
      status: "active",
      device_policy: "auto",
      own_limits: ["device_burst"],
    });
    expect(created.body.limits).toEqual({
      max_devices: 10_000,
      rate_per_second: 50_000,
      burst: 100_000,
      device_rate_per_second: 100,
      device_burst: 500,
      max_records_per_request: 10_000,
    });
    expect((await admin().post("/admin/v1/tenants", { id: "gamma" })).status).toBe(409);
    expect((await admin().post("/admin/v1/tenants", { id: "Not.Valid" })).status).toBe(422);

    const k = await admin().post("/admin/v1/tenants/gamma/keys", { name: "fleet" });
    expect(k.status).toBe(201);
    const key: string = k.body.key;
    expect(key).toMatch(/^tk_[A-Za-z0-9_-]{51}$/);
    expect(k.body).toMatchObject({ tenant: "gamma", name: "fleet", prefix: key.slice(3, 11), revoked_at: null });
    expect((await ingest(key)).status).toBe(202);

    const listed = await admin().get("/admin/v1/tenants/gamma/keys");
    expect(listed.body.keys).toHaveLength(1);
    expect(Object.keys(listed.body.keys[0]).sort()).toEqual([
      "created_at",
      "device",
      "id",
      "kind",
      "last_used_at",
      "name",
      "prefix",
      "revoked_at",
      "tenant",
    ]);
    expect(JSON.stringify(listed.body)).not.toContain(key.slice(11));

    // A dump of the whole database holds the hashes and no key, bootstrap keys included.
    const dump = Bun.spawnSync({
      cmd: [join(findPostgresBinDir(), "pg_dump"), "--dbname", databaseUrl],
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(dump.exitCode).toBe(0);
    const text = dump.stdout.toString();
    expect(text).toContain("COPY public.api_keys");
    for (const raw of [key, TEST_KEY, OTHER_KEY]) {
      expect(text).toContain(hashKey(raw));
      expect(text).not.toContain(raw);
    }
    expect(text).not.toContain(key.slice(11));
  });

  test("a key revoked through the admin API is refused at once", async () => {
    const { body } = await admin().post("/admin/v1/tenants/gamma/keys", { name: "old" });
    expect((await ingest(body.key)).status).toBe(202); // cached now
    const revoked = await admin().post(`/admin/v1/tenants/gamma/keys/${body.id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).not.toBeNull();
    const res = await ingest(body.key);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("unauthenticated");
    expect((await admin().post(`/admin/v1/tenants/acme/keys/${body.id}/revoke`)).status).toBe(404); // another tenant's key
  });

  test("a suspended tenant gets 403 with the reason on every route; resumed, 202 again", async () => {
    const bad = await admin().patch("/admin/v1/tenants/beta", { status: "suspended" });
    expect(bad.status).toBe(422);
    expect(bad.body.error.details[0].path).toBe("suspended_reason");

    const suspended = await admin().patch("/admin/v1/tenants/beta", {
      status: "suspended",
      suspended_reason: "unpaid invoice",
    });
    expect(suspended.body).toMatchObject({ status: "suspended", suspended_reason: "unpaid invoice" });
    const res = await ingest(OTHER_KEY);
    expect(res.status).toBe(403);
    expect(res.body).toEqual({
      error: { code: "tenant_suspended", message: "tenant beta is suspended: unpaid invoice" },
    });
    expect((await apiClient(server, OTHER_KEY).get("/api/v1/devices")).status).toBe(403);
    expect((await apiClient(server, OTHER_KEY).get("/api/v1/channels")).status).toBe(403);
    expect((await ingest(TEST_KEY)).status).toBe(202); // other tenants go on

    expect((await admin().patch("/admin/v1/tenants/beta", { status: "active" })).body).toMatchObject({
      status: "active",
      suspended_reason: null,
    });
    expect((await ingest(OTHER_KEY)).status).toBe(202);
  });
});

describe("CLI", () => {
  test("tenants create/list/update/suspend/resume and keys create/list/revoke, against the database", async () => {
    const created = cli(
      "tenants",
      "create",
      "delta",
      "--name",
      "Delta",
      "--device-policy",
      "reject",
      "--max-devices",
      "5",
      "--json",
    );
    expect(created.code).toBe(0);
    expect(created.json()).toMatchObject({
      id: "delta",
      name: "Delta",
      device_policy: "reject",
      own_limits: ["max_devices"],
    });
    expect(created.json().limits.max_devices).toBe(5);
    expect(cli("tenants", "create", "delta").err).toContain("tenant delta exists");
    const invalid = cli("tenants", "create", "delta2", "--rate-per-second", "fast");
    expect(invalid.code).toBe(1);
    expect(invalid.err).toContain("limits.rate_per_second");

    const k = cli("keys", "create", "delta", "--name", "cli", "--json");
    expect(k.code).toBe(0);
    const { key, id } = k.json();
    expect(key).toMatch(/^tk_/);
    const listed = cli("keys", "list", "delta", "--json");
    expect(listed.json()).toHaveLength(1);
    expect(listed.out).not.toContain(key);
    expect(cli("keys", "list").out).toContain(key.slice(3, 11)); // text form: the prefix

    expect((await ingest(key)).body.error.code).toBe("unknown_device"); // policy reject
    expect(cli("tenants", "update", "delta", "--device-policy", "auto", "--max-devices", "default").code).toBe(0);
    await within(async () => (await ingest(key)).status === 202, "device policy auto");

    expect(cli("tenants", "suspend", "delta", "--reason", "maintenance").code).toBe(0);
    const tookSuspend = await within(async () => (await ingest(key)).status === 403, "403 after suspend");
    expect((await ingest(key)).body.error.message).toBe("tenant delta is suspended: maintenance");
    expect(
      cli("tenants", "list", "--json")
        .json()
        .find((t: { id: string }) => t.id === "delta"),
    ).toMatchObject({ status: "suspended", suspended_reason: "maintenance" });
    expect(cli("tenants", "resume", "delta").code).toBe(0);
    await within(async () => (await ingest(key)).status === 202, "202 after resume");

    expect(cli("keys", "revoke", id).code).toBe(0);
    const tookRevoke = await within(async () => (await ingest(key)).status === 401, "401 after revoke");
    // Another process's change is seen within the TTL (plus a poll interval and the CLI's own exit).
    expect(Math.max(tookSuspend, tookRevoke)).toBeLessThanOrEqual(TTL_MS + 500);
    expect(cli("keys", "list", "delta", "--json").json()[0].revoked_at).not.toBeNull();
  }, 60_000);
});

describe("database outage", () => {
  test("known keys keep working while PostgreSQL is down; keys not seen before get 503; admin off without a token", async () => {
    await using pg = await startPostgres();
    await using outage = await startTestServer({
      NATS_URL: nats.url,
      DATABASE_URL: pg.url,
      TELEMETRY_ROLES: "ingest,api",
      TELEMETRY_AUTH_CACHE_TTL: "500ms",
    });
    expect((await apiClient(outage, ADMIN).get("/admin/v1/tenants")).status).toBe(404);
    const send = (key: string, device = "truck-1") => post(outage, [record(device)], { key });
    expect((await send(TEST_KEY)).status).toBe(202);
    // A key made after the server started (so not in its warmed cache) and never used.
    const sql = createSql(pg.url, { max: 1, name: "test" });
    const late = (await createKey(sql, "acme", "late"))!.key;
    await sql.end();

    await pg.stop();
    expect((await send(TEST_KEY)).status).toBe(202);
    await Bun.sleep(1_000); // past the TTL: the cached answer is stale now, and still used
    for (let i = 0; i < 5; i++) expect((await send(TEST_KEY, `new-during-outage-${i}`)).status).toBe(202);
    expect((await send(OTHER_KEY)).status).toBe(202); // never used, but loaded when the server started
    for (const key of [late, "tk_never-seen-0123456789"]) {
      const res = await send(key);
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe("auth_unavailable");
      expect(res.headers.get("retry-after")).toBe("5");
    }
    const metrics = await (await fetch(`${outage.url}/metrics`)).text();
    expect(metrics).toMatch(/telemetry_auth_lookups_total\{result="stale"\} [1-9]/);

    await pg.start();
    await check(async () => (await send(late)).status === 202, {
      what: "the key store back",
      timeoutMs: 30_000,
      intervalMs: 200,
    });
  }, 90_000);
});
