/**
 * The TimescaleDB path: migrations make hypertables (readings, rollups) with compression and
 * retention policies; the writer's rows and rollups land in them; the evaluator computes deviation
 * alerts from the rollup hypertable; `telemetry status` lists the policy jobs and a failed run.
 * PGlite serves one connection at a time, so the phases run one after another.
 *
 * Runs on PGlite's WASM TimescaleDB, and again on a real server when TELEMETRY_TEST_TIMESCALE_URL
 * is set (skipped, and said so, when it is not).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { v4 as uuidv4 } from "uuid";
import { createSql } from "../../src/db/client.ts";
import { join } from "node:path";
import type { TimescaleJob } from "../../src/db/jobs.ts";
import { startEvaluator } from "../../src/evaluator/evaluator.ts";
import { connectBroker } from "../../src/nats/connection.ts";
import { BASE_TS, identity, validRecords } from "../helpers/data.ts";
import { check, startNats } from "../helpers/services.ts";
import { post, startTestServer } from "../helpers/server.ts";
import { REAL_TIMESCALE_URL, realTimescale, startTimescale, type TimescaleDb } from "../helpers/timescale.ts";

const records = validRecords(1_000, 10);
const outlier = { device_id: "dev-0", ts: BASE_TS + 1_060_000, metrics: { temp: 99 } };

if (!REAL_TIMESCALE_URL)
  console.log(
    "timescale.test: TELEMETRY_TEST_TIMESCALE_URL is not set; the tests against a real TimescaleDB server are skipped (PGlite's run)",
  );

describe("PGlite TimescaleDB", () => timescaleTests(startTimescale));
describe.skipIf(!REAL_TIMESCALE_URL)("real TimescaleDB (TELEMETRY_TEST_TIMESCALE_URL)", () =>
  timescaleTests(realTimescale),
);

function timescaleTests(start: () => Promise<TimescaleDb>) {
  let nats: Awaited<ReturnType<typeof startNats>>;
  let tsdb: TimescaleDb;

  beforeAll(async () => {
    nats = await startNats();
    tsdb = await start();
  }, 60_000);

  afterAll(async () => {
    await tsdb?.[Symbol.asyncDispose]();
    await nats?.[Symbol.asyncDispose]();
  }, 60_000);

  const count = async (q: string) => (await tsdb.query<{ n: number }>(q))[0]!.n;

  test("writer: hypertables with compression and retention policies hold every reading and rollup once", async () => {
    const server = await startTestServer({
      NATS_URL: nats.url,
      DATABASE_URL: tsdb.url,
      TELEMETRY_ROLES: "ingest,writer",
      TELEMETRY_DB_POOL_MAX: "1",
      // PGlite's WASM runtime aborts on the default 2,000-reading batches (COPY is not used there either).
      TELEMETRY_BATCH_SIZE: "500",
      TELEMETRY_TIMESCALE: "on",
      TELEMETRY_RETENTION: "365d",
    });
    try {
      expect(server.storageMode).toBe("timescaledb");
      for (let i = 0; i < records.length; i += 250)
        expect((await post(server, records.slice(i, i + 250))).status).toBe(202);
      expect((await post(server, records.slice(0, 250))).body.duplicate).toBe(250);
      expect((await post(server, [outlier])).status).toBe(202);
      await check(() => server.writer!.stats.readings >= 1_001 && server.writer!.stats.held === 0, {
        what: "the writer to store everything",
        timeoutMs: 60_000,
      });
    } finally {
      await server[Symbol.asyncDispose]();
    }

    // Migration 0011 in this mode too: devices' pages keep room for HOT updates (decision 0575).
    expect(await tsdb.query("SELECT reloptions FROM pg_class WHERE relname = 'devices'")).toEqual([
      { reloptions: ["fillfactor=50"] },
    ]);
    const hypertables = await tsdb.query<{ hypertable_name: string; compression_enabled: boolean }>(
      "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables ORDER BY 1",
    );
    expect(hypertables).toEqual([
      { hypertable_name: "readings", compression_enabled: true },
      { hypertable_name: "readings_1m", compression_enabled: true },
    ]);
    // readings_1m keeps its 7-day chunks (docs/operations.md, TimescaleDB), readings 1-day ones.
    const chunks = await tsdb.query<{ hypertable_name: string; days: number }>(
      "SELECT hypertable_name, (extract(epoch from time_interval) / 86400)::int AS days FROM timescaledb_information.dimensions ORDER BY 1",
    );
    expect(chunks).toEqual([
      { hypertable_name: "readings", days: 1 },
      { hypertable_name: "readings_1m", days: 7 },
    ]);
    // Retention: the readings' 365 d, the rollups' default 4x (1460 d); both compressed after 7 d.
    const jobs = await tsdb.query<{ hypertable_name: string; proc_name: string; days: number }>(
      `SELECT hypertable_name, proc_name, (extract(epoch from coalesce(config->>'drop_after', config->>'compress_after')::interval) / 86400)::int AS days
     FROM timescaledb_information.jobs WHERE hypertable_name IN ('readings', 'readings_1m') ORDER BY 1, 2`,
    );
    expect(jobs.map((j) => [j.hypertable_name, j.proc_name, j.days])).toEqual([
      ["readings", "policy_compression", 7],
      ["readings", "policy_retention", 365],
      ["readings_1m", "policy_compression", 7],
      ["readings_1m", "policy_retention", 1460],
    ]);
    const rows = await tsdb.query<{ device_id: string; ms: string }>(
      "SELECT device_id, (extract(epoch from ts) * 1000)::bigint::text AS ms FROM readings",
    );
    expect(new Set(rows.map((r) => `${r.device_id}@${r.ms}`))).toEqual(new Set([...records, outlier].map(identity)));
    expect(await count("SELECT sum(count)::int AS n FROM readings_1m WHERE metric = 'temp'")).toBe(1_001);
    // Compressing a chunk keeps the rows readable and the key still refuses a duplicate.
    await tsdb.query("SELECT compress_chunk(c) FROM show_chunks('readings') c");
    expect(await count("SELECT count(*)::int AS n FROM readings")).toBe(1_001);
    await tsdb.query("INSERT INTO readings SELECT * FROM readings ORDER BY ts LIMIT 10 ON CONFLICT DO NOTHING");
    expect(await count("SELECT count(*)::int AS n FROM readings")).toBe(1_001);
    // The rollups compress too, and a late reading's upsert into a compressed chunk still counts once more.
    await tsdb.query("SELECT compress_chunk(c) FROM show_chunks('readings_1m') c");
    expect(await count("SELECT sum(count)::int AS n FROM readings_1m WHERE metric = 'temp'")).toBe(1_001);
  }, 120_000);

  test("evaluator: a deviation rule over the rollup hypertable fires for the outlier only", async () => {
    const ruleId = uuidv4();
    await tsdb.query(
      `INSERT INTO rules (id, tenant, name, severity, metric, condition) VALUES ($1, 'acme', 'temp outlier', 'warning', 'temp', $2)`,
      [ruleId, JSON.stringify({ type: "deviation_from_mean", k: 4, window_minutes: 30 })],
    );
    const broker = await connectBroker(nats.url, { name: "timescale-test" });
    const sql = createSql(tsdb.url, { max: 1, name: "evaluator" });
    const evaluator = await startEvaluator(broker, sql, {
      stream: "TELEMETRY_COMMITTED",
      durable: "evaluator",
      noDataIntervalMs: 60_000,
    });
    try {
      const events = (await broker.jsm.streams.info("TELEMETRY_COMMITTED")).state.messages;
      await check(() => evaluator.stats.batches >= events, {
        what: `${events} committed events evaluated`,
        timeoutMs: 60_000,
      });
    } finally {
      await evaluator.stop(5_000);
      await sql.end();
      await broker.close();
    }
    const alerts = await tsdb.query<{ device_id: string; value: number; triggered_at: Date }>(
      "SELECT device_id, value, triggered_at FROM alerts",
    );
    expect(alerts).toEqual([{ device_id: "dev-0", value: 99, triggered_at: new Date(outlier.ts) }]);
  }, 120_000);

  test("status: every TimescaleDB job with its schedule, last run, status and last error", async () => {
    // Asynchronously: PGlite answers from this process's event loop.
    const cli = async (...args: string[]) => {
      const proc = Bun.spawn({
        cmd: [process.execPath, "src/cli/main.ts", "status", ...args],
        cwd: join(import.meta.dir, "../.."),
        env: { PATH: process.env.PATH!, DATABASE_URL: tsdb.url, NATS_URL: nats.url, LOG_LEVEL: "warn" },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [out, err, code] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      expect({ code, err }).toEqual({ code: 0, err: "" });
      return out;
    };
    const status = async () =>
      JSON.parse(await cli("--json")).database as { mode: string; timescale_jobs: TimescaleJob[] };
    const db = await status();
    expect(db.mode).toBe("timescaledb");
    const ours = db.timescale_jobs.filter((j) => j.hypertable !== null).map((j) => `${j.hypertable} ${j.proc}`);
    expect(ours.sort()).toEqual([
      "readings policy_compression",
      "readings policy_retention",
      "readings_1m policy_compression",
      "readings_1m policy_retention",
    ]);
    const expected = await tsdb.query<{ job_id: number; schedule: string }>(
      "SELECT job_id, schedule_interval::text AS schedule FROM timescaledb_information.jobs ORDER BY job_id",
    );
    expect(db.timescale_jobs.map((j) => [j.id, j.schedule])).toEqual(expected.map((j) => [j.job_id, j.schedule]));
    if (tsdb.kind !== "pglite") return;

    // Background jobs never run in PGlite (and run_job records nothing there): write what TimescaleDB's
    // scheduler records after a failed run, as every run did on PostgreSQL 15.20 + TimescaleDB 2.28.3.
    const job = db.timescale_jobs.find((j) => j.hypertable === "readings" && j.proc === "policy_compression")!;
    expect(job).toMatchObject({ last_run: null, last_run_status: null, total_runs: 0, last_error: null });
    await tsdb.query(
      `INSERT INTO _timescaledb_internal.bgw_job_stat (job_id, last_start, last_finish, next_start, last_successful_finish, last_run_success,
       total_runs, total_duration, total_duration_failures, total_successes, total_failures, total_crashes, consecutive_failures, consecutive_crashes, flags)
     VALUES ($1, '2026-12-01T10:00:00Z', '2026-12-01T10:00:02Z', '2026-12-01T22:00:00Z', '-infinity', false, 3, '6 s', '2 s', 2, 1, 0, 1, 0, 0)`,
      [job.id],
    );
    await tsdb.query(
      `INSERT INTO _timescaledb_internal.bgw_job_stat_history (job_id, pid, execution_start, execution_finish, succeeded, data)
     VALUES ($1, 4242, '2026-12-01T10:00:00Z', '2026-12-01T10:00:02Z', false,
             jsonb_build_object('job', jsonb_build_object('proc_schema', '_timescaledb_functions', 'proc_name', 'policy_compression'),
                                'error_data', jsonb_build_object('sqlerrcode', 'XX000', 'message', 'cannot drop portal "" while it is being set up')))`,
      [job.id],
    );
    const failed = (await status()).timescale_jobs.find((j) => j.id === job.id)!;
    expect(failed).toMatchObject({
      last_run: "2026-12-01T10:00:00.000Z",
      last_run_status: "Failed",
      total_runs: 3,
      total_failures: 1,
      last_error: {
        at: "2026-12-01T10:00:02.000Z",
        code: "XX000",
        message: 'cannot drop portal "" while it is being set up',
      },
    });
    const text = await cli();
    expect(text).toContain(
      `${job.id} policy_compression on readings, every ${job.schedule}: last run 2026-12-01T10:00:00.000Z Failed (1 of 3 runs failed)`,
    );
    expect(text).toContain('last error 2026-12-01T10:00:02.000Z: XX000 cannot drop portal "" while it is being set up');
  }, 120_000);
}
