/**
 * The embedded database (TELEMETRY_DATABASE=embedded: PGlite in the server's process):
 * `telemetry serve` from source stores, serves and keeps readings across a restart, fires alerts,
 * and `telemetry migrate-to` moves every table to a real PostgreSQL exactly, idempotently.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type postgres from "postgres";
import { createSql } from "../../src/db/client.ts";
import { startEmbeddedDatabase } from "../../src/embedded/pglite.ts";
import { freePort } from "../../src/embedded/process.ts";
import { apiClient } from "../helpers/api.ts";
import { ndjson, TEST_KEY } from "../helpers/server.ts";
import { check, freshDatabase } from "../helpers/services.ts";
import { validRecords } from "../helpers/data.ts";

const root = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "telemetry-embedded-db-"));
const dataDir = join(dir, "data");
let proc: ReturnType<typeof Bun.spawn> | undefined;
let output = "";
let base = "";
const api = () => apiClient({ url: base });
const env = (extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH!,
  TELEMETRY_DATA_DIR: dataDir,
  TELEMETRY_DATABASE: "embedded",
  TELEMETRY_API_KEYS: `acme:${TEST_KEY}`,
  TELEMETRY_FLUSH_INTERVAL: "100ms",
  LOG_LEVEL: "warn",
  ...extra,
});
const cli = (...args: string[]) => cliIn(env(), ...args);
const cliIn = (environment: Record<string, string>, ...args: string[]) => {
  const r = Bun.spawnSync({
    cmd: [process.execPath, "src/cli/main.ts", ...args],
    cwd: root,
    env: environment,
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

async function serve(): Promise<void> {
  const port = await freePort();
  output = "";
  proc = Bun.spawn({
    cmd: [process.execPath, "src/cli/main.ts", "serve"],
    cwd: root,
    env: env({ PORT: String(port), HOST: "127.0.0.1", TELEMETRY_NATS_PORT: "0" }),
    stdout: "pipe",
    stderr: "pipe",
  });
  const decoder = new TextDecoder();
  for (const stream of [proc.stdout, proc.stderr] as ReadableStream<Uint8Array>[]) {
    void (async () => {
      for await (const chunk of stream) output += decoder.decode(chunk);
    })();
  }
  base = `http://127.0.0.1:${port}`;
  await check(
    async () =>
      (await fetch(`${base}/ready`).catch(() => null))?.status === 200 ||
      (proc!.exitCode !== null && Promise.reject(new Error(output))),
    {
      what: "ready",
      timeoutMs: 90_000,
      intervalMs: 200,
    },
  );
}

async function stop(): Promise<number> {
  proc!.kill("SIGTERM");
  return proc!.exited;
}

const readingCount = async (device: string) => {
  const r = await api().get(`/api/v1/devices/${device}/readings?from=2025-01-01T00:00:00Z&limit=1000`);
  return r.status === 200 ? (r.body.readings as unknown[]).length : -1;
};

const RECORDS = validRecords(300, 3);

beforeAll(serve, 120_000);
afterAll(() => {
  if (proc && proc.exitCode === null) proc.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("serve on the embedded database", () => {
  test("says what the mode is for; readings go in and come back from the API", async () => {
    expect(output).toContain("for trying the server out and small installations");
    expect(output).toContain("migrate-to");
    const res = await fetch(`${base}/api/v1/telemetry`, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_KEY}`, "content-type": "application/x-ndjson" },
      body: ndjson(RECORDS),
    });
    expect(res.status).toBe(202);
    const counts = await check(
      async () => {
        const c = await Promise.all(["dev-0", "dev-1", "dev-2"].map(readingCount));
        return c.every((n) => n === 100) && c;
      },
      { what: "300 readings through the API", timeoutMs: 30_000 },
    );
    expect(counts).toEqual([100, 100, 100]);
    expect(existsSync(join(dataDir, "pglite", "PG_VERSION"))).toBe(true);
    expect(existsSync(join(dataDir, "pg"))).toBe(false);
  }, 60_000);

  test("a threshold rule opens an alert", async () => {
    await api().createRule({
      name: "hot",
      metric: "temp",
      severity: "critical",
      condition: { type: "above_threshold", threshold: 30 },
    });
    await api().ingest([{ device_id: "hot-1", ts: new Date().toISOString(), metrics: { temp: 31.5 } }]);
    const alerts = await check(
      async () => {
        const a = await api().alerts();
        return a.length > 0 && a;
      },
      { what: "an alert", timeoutMs: 30_000 },
    );
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ device_id: "hot-1", metric: "temp", status: "open", value: 31.5 });
  }, 60_000);

  test("a CLI command uses the running server's embedded database; migrate-to refuses while it runs", async () => {
    const tenants = cli("tenants", "list", "--json");
    expect(tenants.code).toBe(0);
    expect(JSON.parse(tenants.out).map((t: { id: string }) => t.id)).toEqual(["acme"]);
    const refused = cli("migrate-to", "--database-url", "postgres://nobody@127.0.0.1:1/x");
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("stop it first");
  }, 60_000);

  test("stop and start: the readings and the alert are still there", async () => {
    expect(await stop()).toBe(0);
    await serve();
    expect(await Promise.all(["dev-0", "dev-1", "dev-2", "hot-1"].map(readingCount))).toEqual([100, 100, 100, 1]);
    expect((await api().alerts()).map((a) => a.device_id)).toEqual(["hot-1"]);
    expect(await stop()).toBe(0);
  }, 120_000);
});

test("without a server, a command opens a new data dir's embedded database itself; auto keeps using it", () => {
  const fresh = join(dir, "fresh", "data");
  const migrate = cliIn(env({ TELEMETRY_DATA_DIR: fresh }), "migrate");
  expect(migrate.code).toBe(0);
  expect(migrate.out).toContain("applied 0001_init");
  expect(migrate.out).toContain("(storage: postgresql)");
  expect(existsSync(join(fresh, "pglite", "PG_VERSION"))).toBe(true);
  const { TELEMETRY_DATABASE: _, ...auto } = env({ TELEMETRY_DATA_DIR: fresh });
  const again = cliIn(auto, "migrate");
  expect(again.code).toBe(0);
  expect(again.out).toContain("pglite.sock");
  expect(again.out).toContain("already up to date");
  expect(existsSync(join(fresh, "pg"))).toBe(false);
}, 60_000);

describe("migrate-to", () => {
  const tables = async (sql: postgres.Sql) =>
    (
      await sql<
        { name: string }[]
      >`SELECT relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind = 'r' AND relname <> 'telemetry_migrations' ORDER BY 1`
    ).map((r) => r.name);
  const summary = async (sql: postgres.Sql) => {
    const out: Record<string, number> = {};
    for (const t of await tables(sql)) out[t] = Number((await sql.unsafe(`SELECT count(*) AS n FROM "${t}"`))[0]!.n);
    const [sum] =
      await sql`SELECT md5(string_agg(concat_ws('|', tenant, device_id, ts, event_id, metrics::text, lat, lon, attributes::text, received_at), ',' ORDER BY tenant, device_id, ts, event_id)) AS md5 FROM readings`;
    const [seq] = await sql`SELECT last_value::int AS n FROM pg_sequences WHERE sequencename = 'quarantine_id_seq'`;
    return { counts: out, readings: sum!.md5 as string, quarantineSeq: seq?.n ?? null };
  };
  const embeddedSummary = async () => {
    await using db = await startEmbeddedDatabase({ dataDir: join(dataDir, "pglite") });
    const sql = createSql(db.url, { max: 1, name: "test" });
    try {
      return await summary(sql);
    } finally {
      await sql.end({ timeout: 1 });
    }
  };

  test("moves every table's rows exactly; a re-run changes nothing", async () => {
    // A quarantined row too, so a sequence has advanced (its next id must not collide on the target).
    {
      await using db = await startEmbeddedDatabase({ dataDir: join(dataDir, "pglite") });
      const sql = createSql(db.url, { max: 1, name: "test" });
      await sql`INSERT INTO quarantine (source, reason, payload) SELECT 'test', 'test', '{}' FROM generate_series(1, 3)`;
      await sql`DELETE FROM quarantine WHERE id = (SELECT max(id) FROM quarantine)`;
      await sql.end({ timeout: 1 });
    }
    const before = await embeddedSummary();
    expect(before.counts.readings).toBe(301);
    expect(Object.values(before.counts).filter((n) => n > 0).length).toBeGreaterThanOrEqual(6);

    const url = await freshDatabase("migrate_to");
    const first = cli("migrate-to", "--database-url", url);
    expect(first.err).toBe("");
    expect(first.code).toBe(0);
    expect(first.out).toContain("all ");
    const target = createSql(url, { max: 1, name: "test" });
    try {
      const after = await summary(target);
      expect(after.counts).toEqual(before.counts);
      expect(after.readings).toBe(before.readings);
      expect(after.quarantineSeq).toBe(3);

      const again = cli("migrate-to", "--database-url", url);
      expect(again.code).toBe(0);
      const copiedNow = again.out
        .split("\n")
        .filter((l) => /^\w+\s+\d+\s+\d+\s+\d+$/.test(l))
        .map((l) => Number(l.trim().split(/\s+/).pop()));
      expect(copiedNow.length).toBe(Object.keys(before.counts).length);
      expect(copiedNow.every((n) => n === 0)).toBe(true);
      expect(await summary(target)).toEqual(after);
    } finally {
      await target.end({ timeout: 1 });
    }
  }, 180_000);
});
