/**
 * TimescaleDB installed but not usable: `auto` never crashes, says why and names the fix, and goes
 * on with plain PostgreSQL; `on` refuses with the same reason. The supervised PostgreSQL preloads
 * TimescaleDB for a new data dir when the extension is installed, and keeps a plain one plain.
 *
 * The extension is a stand-in in a private copy of the PostgreSQL installation (test/helpers/
 * pg-tree.ts) whose install script ends its own backend, as the real FATAL does: a fallback that
 * relied on catching an error inside the migration transaction could not survive it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSql } from "../../src/db/client.ts";
import { migrate, type MigrateOptions } from "../../src/db/migrate.ts";
import { findPostgresBinDir, startLocalPostgres, type LocalPostgresOptions } from "../../src/embedded/postgres.ts";
import { MARKER_FILE } from "../../src/embedded/timescale-preload.ts";
import { configureLogger } from "../../src/lib/log.ts";
import { postgresTreeWithStandIn } from "../helpers/pg-tree.ts";
import { check, startNats } from "../helpers/services.ts";

const lines: string[] = [];
const logged = (re: RegExp) => lines.some((l) => re.test(l));
const options = (timescale: MigrateOptions["timescale"]): MigrateOptions => ({
  timescale,
  retentionMs: null,
  compressAfterMs: 86_400_000,
});

beforeAll(() => {
  configureLogger("info", true, { write: (line: string) => void lines.push(line) });
});

afterAll(() => {
  configureLogger(process.env.TEST_LOG_LEVEL ?? "warn", true);
});

/** A data dir the postgres OS user can reach (tests may run as root); removed afterwards. */
async function dataDir(): Promise<AsyncDisposable & { path: string }> {
  const dir = await mkdtemp(join(tmpdir(), `telemetry-postgres-${process.pid}-`));
  chmodSync(dir, 0o755);
  return { path: join(dir, "pgdata"), [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }) };
}

async function withPostgres<T>(opts: LocalPostgresOptions, fn: (url: string) => Promise<T>): Promise<T> {
  const pg = await startLocalPostgres(opts);
  try {
    return await fn(pg.url);
  } finally {
    await pg.stop();
  }
}

async function migrateAt(url: string, timescale: MigrateOptions["timescale"]) {
  const sql = createSql(url, { max: 2, name: "test" });
  try {
    const result = await migrate(sql, options(timescale));
    // The pool still works after the attempt, and the database really is plain.
    const [row] =
      await sql`SELECT (SELECT value FROM telemetry_meta WHERE key = 'storage_mode') AS mode, (SELECT count(*)::int FROM readings) AS n,
                                   EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS ext`;
    return { ...result, row };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

const preloadSetting = async (url: string) => {
  const sql = createSql(url, { max: 1, name: "test" });
  try {
    return (await sql`SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'`)[0]!.setting as string;
  } finally {
    await sql.end({ timeout: 1 });
  }
};

test("installed but not preloaded: auto uses plain PostgreSQL and names the fix, on refuses; CREATE EXTENSION is never tried", async () => {
  await using tree = await postgresTreeWithStandIn({ library: false });
  await using dir = await dataDir();
  await withPostgres({ dataDir: dir.path, binDir: tree.binDir }, async (url) => {
    lines.length = 0;
    const r = await migrateAt(url, "auto");
    expect(r.mode).toBe("postgresql");
    expect(r.row).toEqual({ mode: "postgresql", n: 0, ext: false });
    expect(
      logged(
        /installed but not preloaded \(shared_preload_libraries = ''\); using plain PostgreSQL\. To use TimescaleDB: add timescaledb to shared_preload_libraries.*restart PostgreSQL, then run `telemetry migrate`/,
      ),
    ).toBe(true);
    expect(logged(/could not be enabled/)).toBe(false); // decided before trying, not caught afterwards
    const sql = createSql(url, { max: 1, name: "test" });
    try {
      await expect(migrate(sql, options("on"))).rejects.toThrow(
        /TELEMETRY_TIMESCALE=on but the timescaledb extension is installed but not preloaded .*add timescaledb to shared_preload_libraries/,
      );
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
}, 120_000);

test("preloaded, but CREATE EXTENSION ends its connection: auto goes on with plain PostgreSQL, on fails with the reason", async () => {
  await using tree = await postgresTreeWithStandIn({ library: true });
  await using dir = await dataDir();
  lines.length = 0;
  // A new data dir, the extension installed: the supervised PostgreSQL preloads it.
  await withPostgres({ dataDir: dir.path, binDir: tree.binDir, timescale: "auto" }, async (url) => {
    expect(
      logged(
        /"preload":true.*"reason":"the timescaledb extension is installed and the data dir is new".*TimescaleDB preloaded/,
      ),
    ).toBe(true);
    expect(readFileSync(join(dir.path, MARKER_FILE), "utf8").trim()).toBe("timescaledb");
    expect(await preloadSetting(url)).toBe("timescaledb");
    const r = await migrateAt(url, "auto");
    expect(r.mode).toBe("postgresql");
    expect(r.row).toEqual({ mode: "postgresql", n: 0, ext: false });
    expect(
      logged(
        /could not be enabled \(the server ended the connection during CREATE EXTENSION: .*\); using plain PostgreSQL/,
      ),
    ).toBe(true);
    const sql = createSql(url, { max: 1, name: "test" });
    try {
      await expect(migrate(sql, options("on"))).rejects.toThrow(
        /TELEMETRY_TIMESCALE=on but the timescaledb extension could not be enabled/,
      );
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
}, 120_000);

test("the supervised PostgreSQL keeps a plain data dir plain until TELEMETRY_TIMESCALE=on", async () => {
  await using tree = await postgresTreeWithStandIn({ library: true });
  await using dir = await dataDir();
  // Made by a PostgreSQL without the extension: plain, and it has a plain telemetry database.
  await withPostgres({ dataDir: dir.path, binDir: findPostgresBinDir(), timescale: "auto" }, async (url) => {
    expect((await migrateAt(url, "auto")).mode).toBe("postgresql");
  });
  expect(readFileSync(join(dir.path, MARKER_FILE), "utf8").trim()).toBe("postgresql");
  lines.length = 0;
  // The extension appears (the same PostgreSQL with it installed): still plain, and the log says how to move.
  await withPostgres({ dataDir: dir.path, binDir: tree.binDir, timescale: "auto" }, async (url) => {
    expect(await preloadSetting(url)).toBe("");
    expect(
      logged(/"preload":false.*holds a plain PostgreSQL database and stays plain.*telemetry migrate --timescale on/),
    ).toBe(true);
    expect((await migrateAt(url, "auto")).mode).toBe("postgresql");
  });
  // The operator asks for it: preloaded from now on.
  await withPostgres({ dataDir: dir.path, binDir: tree.binDir, timescale: "on" }, async (url) => {
    expect(await preloadSetting(url)).toBe("timescaledb");
  });
  expect(readFileSync(join(dir.path, MARKER_FILE), "utf8").trim()).toBe("timescaledb");
}, 120_000);

test("zero config end to end: `telemetry migrate` exits 0 and `telemetry serve` stores readings on plain PostgreSQL", async () => {
  await using tree = await postgresTreeWithStandIn({ library: true });
  await using dir = await dataDir();
  await using nats = await startNats();
  const root = join(import.meta.dir, "../..");
  const env = { PATH: `${tree.binDir}:${process.env.PATH}`, TELEMETRY_DATA_DIR: dir.path, LOG_LEVEL: "info" };
  const migrated = Bun.spawnSync({
    cmd: [process.execPath, "src/cli/main.ts", "migrate"],
    cwd: root,
    env,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 90_000,
  });
  const out = migrated.stdout.toString() + migrated.stderr.toString();
  expect({ code: migrated.exitCode, storage: /\(storage: (\w+)\)/.exec(out)?.[1] }).toEqual({
    code: 0,
    storage: "postgresql",
  });
  expect(out).toContain("TimescaleDB preloaded");
  expect(out).toContain("could not be enabled");

  const key = "fallback-test-key-0123456789";
  const serve = Bun.spawn({
    cmd: [process.execPath, "src/cli/main.ts", "serve"],
    cwd: root,
    env: {
      ...env,
      PORT: "0",
      HOST: "127.0.0.1",
      NATS_URL: nats.url,
      TELEMETRY_API_KEYS: `acme:${key}`,
      TELEMETRY_FLUSH_INTERVAL: "100ms",
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  void (async () => {
    for await (const chunk of serve.stdout) output += new TextDecoder().decode(chunk);
  })();
  try {
    const base = await check(
      () =>
        /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1] ??
        (serve.exitCode !== null ? `exited ${serve.exitCode}` : undefined),
      { what: "the serving line", timeoutMs: 120_000 },
    );
    expect(base).toStartWith("http://");
    const auth = { authorization: `Bearer ${key}` };
    const res = await fetch(`${base}/api/v1/telemetry`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ device_id: "d1", ts: Date.now(), metrics: { temp: 21 } }),
    });
    expect(res.status).toBe(202);
    const rows = await check(
      async () => {
        const body = (await (await fetch(`${base}/api/v1/devices/d1/readings`, { headers: auth })).json()) as {
          readings: unknown[];
        };
        return body.readings.length > 0 && body.readings;
      },
      { what: "the reading stored", timeoutMs: 30_000 },
    );
    expect(rows).toHaveLength(1);
  } finally {
    serve.kill("SIGTERM"); // stops its supervised PostgreSQL too
    const exited = await Promise.race([serve.exited.then(() => true), Bun.sleep(45_000).then(() => false)]);
    if (!exited) serve.kill("SIGKILL");
  }
}, 180_000);
