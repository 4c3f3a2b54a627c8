/**
 * The Grafana dashboard's SQL without Grafana: readings go in through the real server, the
 * read-only role is made by `telemetry grafana role`, then every query of every panel and
 * variable of deploy/grafana/dashboards/telemetry-fleet.json is expanded the way Grafana's
 * PostgreSQL datasource expands it (test/helpers/grafana.ts) and run as that role, and its rows
 * are checked against what the fixture implies.
 *
 * PostgreSQL: a server of its own with password (SCRAM) logins over TCP, so the role logs in
 * exactly as Grafana would. TimescaleDB: PGlite's TimescaleDB (one connection at a time, no
 * password auth: the queries run after SET ROLE), and a real server when
 * TELEMETRY_TEST_TIMESCALE_URL is set. The TimescaleDB runs also export the fixture through
 * GET /api/v1/readings/export over the readings hypertable (COPY on real TimescaleDB, keyset pages
 * on PGlite's), reusing the same data.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createSql, type Sql } from "../../src/db/client.ts";
import { freePort } from "../../src/embedded/process.ts";
import { apiClient } from "../helpers/api.ts";
import { expandGrafanaSql, type GrafanaContext } from "../helpers/grafana.ts";
import { check, startNats, startPostgres } from "../helpers/services.ts";
import { OTHER_KEY, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";
import { REAL_TIMESCALE_URL, realTimescale, startTimescale, type TimescaleDb } from "../helpers/timescale.ts";

const ROOT = resolve(import.meta.dir, "../..");
const dashboard = JSON.parse(readFileSync(join(ROOT, "deploy/grafana/dashboards/telemetry-fleet.json"), "utf8"));
const ROLE = "telemetry_grafana";
const PASSWORD = "grafana-Passw0rd-for-tests";
const MIN = 60_000;
/** An hour of readings starting three hours ago, on a 5-minute boundary (Grafana's buckets start at the epoch). */
const T0 = Math.floor((Date.now() - 3 * 3_600_000) / (5 * MIN)) * 5 * MIN;
const TRUCKS = ["truck-1", "truck-2"];

interface Fixture {
  device_id: string;
  ts: number;
  metrics: Record<string, number>;
  location?: { lat: number; lon: number };
}

/** truck-1 and truck-2: a reading a minute for an hour; truck-1 speeding at the end (an open alert). */
function fixture(): Fixture[] {
  const out: Fixture[] = [];
  TRUCKS.forEach((device_id, k) => {
    for (let i = 0; i < 60; i++)
      out.push({
        device_id,
        ts: T0 + i * MIN + k * 15_000,
        metrics: { speed: k === 0 && i >= 55 ? 120 : 40 + i / 2 + 7 * k, temp: 20 + k },
        location: { lat: 52 + i / 1000, lon: 13 + k / 100 },
      });
  });
  return out;
}
const FRESH: Fixture = { device_id: "fresh", ts: Date.now() - 30_000, metrics: { speed: 5 } };
/** Another tenant's truck-1: must never appear in acme's panels. */
const OTHER = TRUCKS.map((device_id, k) => ({ device_id, ts: T0 + k * MIN, metrics: { speed: 999 } }));

const panel = (id: number) => dashboard.panels.find((p: any) => p.id === id);
const sqlOf = (id: number, ref = "A") => panel(id).targets.find((t: any) => t.refId === ref).rawSql as string;
const variable = (name: string) => dashboard.templating.list.find((v: any) => v.name === name);

const ms = (t: unknown) => (t instanceof Date ? t.getTime() : Number(t) * 1000);
const round = (x: unknown) => Math.round(Number(x) * 1e6) / 1e6;

/** Mean speed per (5-minute bucket, device) of acme's fixture in [from, to]. */
function expectedSeries(from: number, to: number) {
  const groups = new Map<string, number[]>();
  for (const r of fixture()) {
    if (r.ts < from || r.ts > to) continue;
    const key = `${Math.floor(r.ts / (5 * MIN)) * 5 * MIN}|${r.device_id}`;
    groups.set(key, [...(groups.get(key) ?? []), r.metrics.speed!]);
  }
  return [...groups]
    .map(([key, v]) => {
      const [time, metric] = key.split("|");
      return { time: Number(time), metric: metric!, value: round(v.reduce((a, b) => a + b, 0) / v.length) };
    })
    .sort((a, b) => a.time - b.time || a.metric.localeCompare(b.metric));
}

type Run = (sql: string) => Promise<Record<string, unknown>[]>;

function contexts(timescaledb: boolean) {
  const vars = { tenant: "acme", device: ["fresh", ...TRUCKS], metric: "speed", silence: "15m" };
  const short: GrafanaContext = {
    from: new Date(T0),
    to: new Date(T0 + 60 * MIN),
    intervalMs: 5 * MIN,
    timescaledb,
    vars,
  };
  const long: GrafanaContext = { ...short, from: new Date(T0 - 86_400_000), to: new Date(T0 + 2 * 3_600_000) };
  return { short, long };
}

/** The checks of every panel and variable; `run` executes SQL as the read-only role. */
function dashboardQueries(timescaledb: boolean, run: () => Run, opts: { alerts: boolean }) {
  const { short, long } = contexts(timescaledb);
  const q = (id: number, ctx: GrafanaContext, ref = "A") => run()(expandGrafanaSql(sqlOf(id, ref), ctx));
  const series = (rows: Record<string, unknown>[]) =>
    rows.map((r) => ({ time: ms(r.time), metric: r.metric as string, value: round(r.value) }));

  test("variables: tenants, the tenant's devices, its metrics in the range", async () => {
    const tenants = (await run()(expandGrafanaSql(variable("tenant").query, short))).map((r) => r.id);
    expect(tenants).toEqual(expect.arrayContaining(["acme", "beta"]));
    const devices = (await run()(expandGrafanaSql(variable("device").query, short))).map((r) => r.device_id);
    expect(devices).toEqual(["fresh", ...TRUCKS]);
    const metrics = (await run()(expandGrafanaSql(variable("metric").query, short))).map((r) => r.metric);
    expect(metrics).toEqual(["speed", "temp"]);
  });

  test("stat: devices and silent devices", async () => {
    const [row] = await q(1, short);
    expect([Number(row!.devices), Number(row!.silent)]).toEqual([3, 2]);
  });

  test("metric per device: a short range reads raw readings, a long one the 1-minute rollups, same means", async () => {
    const raw = series(await q(2, short));
    expect(raw).toEqual(expectedSeries(T0, T0 + 60 * MIN));
    expect(raw).toHaveLength(24);
    const rolled = series(await q(2, long));
    expect(rolled).toEqual(raw); // the rollups give the same 5-minute means
    // One device chosen: only its series.
    const one = series(await q(2, { ...short, vars: { ...short.vars, device: ["truck-2"] } }));
    expect(one).toEqual(expectedSeries(T0, T0 + 60 * MIN).filter((s) => s.metric === "truck-2"));
    // Another tenant: only its rows.
    const beta = series(await q(2, { ...short, vars: { ...short.vars, tenant: "beta" } }));
    expect(beta.map((s) => [s.metric, s.value])).toEqual([
      ["truck-1", 999],
      ["truck-2", 999],
    ]);
  });

  test("geomap: last positions of located devices, and tracks in the range", async () => {
    const last = await q(3, short, "A");
    expect(last.map((r) => [r.device_id, r.latitude, r.longitude])).toEqual([
      ["truck-1", 52.059, 13],
      ["truck-2", 52.059, 13.01],
    ]);
    const tracks = await q(3, short, "B");
    expect(tracks).toHaveLength(120);
    expect(tracks.map((r) => `${r.device_id}@${ms(r.time) / 1000}`)).toEqual(
      fixture().map((r) => `${r.device_id}@${r.ts / 1000}`),
    );
  });

  test("silent devices: those older than $silence, longest silent first", async () => {
    const rows = await q(4, short);
    expect(rows.map((r) => r.device_id)).toEqual(TRUCKS);
    expect(rows.map((r) => ms(r.last_seen) / 1000)).toEqual(
      [T0 + 59 * MIN, T0 + 59 * MIN + 15_000].map((t) => t / 1000),
    );
  });

  test("ingest lag: mean and max of received_at - ts per interval", async () => {
    const rows = await q(5, short);
    expect(rows).toHaveLength(12);
    for (const r of rows) {
      const start = ms(r.time);
      const lagMean = Number(r["mean lag (s)"]);
      const lagMax = Number(r["max lag (s)"]);
      // Received between the test's start and now, each reading's ts inside [start, start + 5 min).
      expect(lagMax).toBeGreaterThanOrEqual(lagMean);
      expect(lagMean).toBeGreaterThan((STARTED - start - 5 * MIN) / 1000);
      expect(lagMax).toBeLessThan((Date.now() - start) / 1000);
    }
  });

  test.if(opts.alerts)("open alerts: the tenant's unresolved alerts", async () => {
    const rows = await q(6, short);
    expect(rows.map((r) => [r.device_id, r.rule_name, r.status, r.severity, Number(r.value)])).toEqual([
      ["truck-1", "speeding", "open", "warning", 120],
    ]);
    expect(await q(6, { ...short, vars: { ...short.vars, tenant: "beta" } })).toEqual([]);
  });
}

const STARTED = Date.now();

async function ingest(server: TestServer, withRule: boolean) {
  const acme = apiClient(server);
  if (withRule)
    await acme.createRule({
      name: "speeding",
      metric: "speed",
      severity: "warning",
      condition: { type: "above_threshold", threshold: 100 },
    });
  await acme.ingest(fixture());
  await acme.ingest([FRESH]);
  await apiClient(server, OTHER_KEY).ingest(OTHER);
  await check(() => server.writer!.stats.readings >= 123 && server.writer!.stats.held === 0, {
    what: "the writer to store every reading",
    timeoutMs: 60_000,
  });
}

/** `telemetry grafana role` as a child process (async: PGlite's socket is served by this process). */
async function makeRole(url: string) {
  const dir = mkdtempSync(join(tmpdir(), "telemetry-grafana-"));
  try {
    writeFileSync(join(dir, "pw"), `${PASSWORD}\n`, { mode: 0o600 });
    const child = Bun.spawn({
      cmd: [
        process.execPath,
        "src/cli/main.ts",
        "grafana",
        "role",
        "--password-file",
        join(dir, "pw"),
        "--database-url",
        url,
      ],
      cwd: ROOT,
      env: { PATH: process.env.PATH, LOG_LEVEL: "warn" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = (await new Response(child.stdout).text()) + (await new Response(child.stderr).text());
    expect(out).not.toContain(PASSWORD);
    if ((await child.exited) !== 0) throw new Error(`telemetry grafana role failed: ${out}`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("PostgreSQL", () => {
  let nats: Awaited<ReturnType<typeof startNats>>;
  let pg: Awaited<ReturnType<typeof startPostgres>>;
  let hbaDir: string;
  let url: string;
  let grafana: Sql;

  beforeAll(async () => {
    nats = await startNats();
    hbaDir = mkdtempSync(join(tmpdir(), "telemetry-hba-"));
    chmodSync(hbaDir, 0o755);
    // Socket and the owner over TCP: trust; everyone else over TCP: SCRAM passwords, as a Grafana host would.
    writeFileSync(
      join(hbaDir, "pg_hba.conf"),
      "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
      { mode: 0o644 },
    );
    const port = await freePort();
    pg = await startPostgres({ port, settings: { hba_file: join(hbaDir, "pg_hba.conf") } });
    await pg.createDatabase("fleet");
    url = pg.urlFor("fleet");
    const server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: url });
    try {
      await ingest(server, true);
      await check(async () => (await apiClient(server).alerts()).length === 1, { what: "the speeding alert" });
    } finally {
      await server[Symbol.asyncDispose]();
    }
    expect(await makeRole(url)).toContain(`created role ${ROLE}`);
    expect(await makeRole(url)).toContain(`updated role ${ROLE}`); // idempotent: a second run updates
    const u = new URL(url);
    u.username = ROLE;
    u.password = PASSWORD;
    grafana = createSql(u.toString(), { max: 1, name: "grafana" });
  }, 120_000);

  afterAll(async () => {
    await grafana?.end({ timeout: 1 });
    await pg?.[Symbol.asyncDispose]();
    await nats?.[Symbol.asyncDispose]();
    if (hbaDir) rmSync(hbaDir, { recursive: true, force: true });
  }, 60_000);

  test("the role logs in with its password only, reads what the dashboard reads and nothing else", async () => {
    const u = new URL(url);
    u.username = ROLE;
    u.password = "wrong-password-123";
    const wrong = createSql(u.toString(), { max: 1, name: "grafana-wrong" });
    await expect(wrong`SELECT 1`).rejects.toThrow(/password authentication failed/);
    await wrong.end({ timeout: 1 });
    expect((await grafana`SELECT count(*)::int AS n FROM readings`)[0]!.n).toBe(fixture().length + 1 + OTHER.length);
    await expect(grafana`SELECT * FROM api_keys`).rejects.toThrow(/permission denied/);
    await expect(grafana`SELECT max_devices FROM tenants`).rejects.toThrow(/permission denied/);
    await expect(grafana`SELECT * FROM channels`).rejects.toThrow(/permission denied/);
    await expect(grafana`DELETE FROM readings`).rejects.toThrow(/read-only transaction|permission denied/);
    await expect(grafana`CREATE TABLE evil (x int)`).rejects.toThrow(/read-only transaction|permission denied/);
    const rolpassword = await createSql(url, { max: 1, name: "owner" }).begin(
      async (tx) => (await tx`SELECT rolpassword FROM pg_authid WHERE rolname = ${ROLE}`)[0]!.rolpassword as string,
    );
    expect(rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
  });

  test("telemetry grafana write: the provisioning files with this database's address, no secret", async () => {
    const dir = mkdtempSync(join(tmpdir(), "telemetry-grafana-out-"));
    try {
      const child = Bun.spawn({
        cmd: [process.execPath, "src/cli/main.ts", "grafana", "write", dir, "--database-url", url],
        cwd: ROOT,
        env: { PATH: process.env.PATH, LOG_LEVEL: "warn" },
        stderr: "pipe",
      });
      expect(await child.exited).toBe(0);
      const ds = Bun.YAML.parse(readFileSync(join(dir, "provisioning/datasources/telemetry.yaml"), "utf8")) as any;
      const u = new URL(url);
      expect(ds.datasources[0]).toMatchObject({
        uid: "telemetry-pg",
        url: `127.0.0.1:${u.port}`,
        user: ROLE,
        jsonData: { database: "fleet", sslmode: "disable", timescaledb: false },
        secureJsonData: { password: "$__file{/etc/grafana/telemetry-grafana.password}" },
      });
      expect(JSON.parse(readFileSync(join(dir, "dashboards/telemetry-fleet.json"), "utf8"))).toEqual(dashboard);
      expect(readFileSync(join(dir, "provisioning/dashboards/provider.yaml"), "utf8")).toContain("type: file");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  dashboardQueries(false, () => (sql) => grafana.unsafe(sql) as never, { alerts: true });
});

for (const [name, start] of [
  ["PGlite TimescaleDB", startTimescale],
  ["real TimescaleDB (TELEMETRY_TEST_TIMESCALE_URL)", realTimescale],
] as const) {
  describe.skipIf(name.startsWith("real") && !REAL_TIMESCALE_URL)(name, () => {
    let nats: Awaited<ReturnType<typeof startNats>>;
    let tsdb: TimescaleDb;

    beforeAll(async () => {
      nats = await startNats();
      tsdb = await start();
      const server = await startTestServer({
        NATS_URL: nats.url,
        DATABASE_URL: tsdb.url,
        TELEMETRY_ROLES: "ingest,writer",
        TELEMETRY_DB_POOL_MAX: "1",
        TELEMETRY_BATCH_SIZE: "500",
        TELEMETRY_TIMESCALE: "on",
      });
      try {
        expect(server.storageMode).toBe("timescaledb");
        await ingest(server, false);
      } finally {
        await server[Symbol.asyncDispose]();
      }
      expect(await makeRole(tsdb.url)).toContain(`created role ${ROLE}`);
    }, 180_000);

    afterAll(async () => {
      await tsdb?.[Symbol.asyncDispose]();
      await nats?.[Symbol.asyncDispose]();
    }, 60_000);

    test("the export reads the hypertable too", async () => {
      await using api = await startTestServer({
        NATS_URL: nats.url,
        DATABASE_URL: tsdb.url,
        // PGlite behind a socket: one connection at a time and no COPY TO STDOUT (real TimescaleDB: COPY).
        ...(name.startsWith("PGlite") ? { TELEMETRY_EXPORT_MODE: "keyset" } : {}),
        TELEMETRY_ROLES: "api",
        TELEMETRY_DB_POOL_MAX: "1",
        TELEMETRY_AUTO_MIGRATE: "false",
      });
      const res = await fetch(`${api.url}/api/v1/readings/export?format=ndjson&device=truck-1,truck-2`, {
        headers: { authorization: `Bearer ${TEST_KEY}` },
      });
      expect(res.status).toBe(200);
      const lines = (await res.text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines.map((r) => `${r.device_id}@${Date.parse(r.ts)}`)).toEqual(
        fixture().map((r) => `${r.device_id}@${r.ts}`),
      );
    }, 60_000);

    // PGlite has no password logins: the queries run as the role after SET ROLE, one at a time.
    const asRole: Run = async (sql) => {
      await tsdb.query(`SET ROLE ${ROLE}`);
      try {
        return await tsdb.query(sql);
      } finally {
        await tsdb.query("RESET ROLE");
      }
    };
    test("readings and rollups are hypertables here", async () => {
      const rows = await tsdb.query<{ hypertable_name: string }>(
        "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1",
      );
      expect(rows.map((r) => r.hypertable_name)).toEqual(["readings", "readings_1m"]);
      // The grants hold on the hypertables (and their chunks); nothing beyond them.
      expect((await asRole("SELECT count(*)::int AS n FROM readings"))[0]!.n).toBe(fixture().length + 1 + OTHER.length);
      await expect(asRole("SELECT * FROM api_keys")).rejects.toThrow(/permission denied/);
    });

    dashboardQueries(true, () => asRole, { alerts: false });
  });
}
