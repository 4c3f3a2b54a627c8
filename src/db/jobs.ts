/**
 * TimescaleDB's background jobs (compression, retention, its own housekeeping) as `telemetry
 * status` shows them: schedule, last run, its status and the last error. A job can fail while
 * doing its work (PostgreSQL 15.20 + TimescaleDB 2.28.3: every run ends with `cannot drop portal ""
 * while it is being set up`, chunks compressed all the same), so an operator must see failures.
 */
import type { Sql } from "./client.ts";

export interface TimescaleJob {
  id: number;
  proc: string;
  hypertable: string | null;
  schedule: string;
  scheduled: boolean;
  /** job_stats: "Scheduled", "Running", "Paused"... */
  job_status: string | null;
  last_run: string | null;
  /** job_stats: "Success" or "Failed"; null before the first run. */
  last_run_status: string | null;
  last_success: string | null;
  next_start: string | null;
  total_runs: number;
  total_failures: number;
  /** The newest entry of timescaledb_information.job_errors (TimescaleDB >= 2.9). */
  last_error: { at: string | null; code: string | null; message: string } | null;
}

/** A time, or null: never, or ±infinity (TimescaleDB's "not yet", e.g. the last success of a job that never succeeded). */
const iso = (d: unknown) =>
  d instanceof Date ? (Number.isNaN(d.getTime()) ? null : d.toISOString()) : d == null ? null : String(d);

/** The jobs, or null when the database has no TimescaleDB. */
export async function timescaleJobs(sql: Sql): Promise<TimescaleJob[] | null> {
  const [views] = await sql`SELECT to_regclass('timescaledb_information.jobs') IS NOT NULL AS jobs,
                                   to_regclass('timescaledb_information.job_errors') IS NOT NULL AS errors`;
  if (!views?.jobs) return null;
  const rows = await sql`
    SELECT j.job_id, j.proc_name, j.hypertable_name, j.schedule_interval::text AS schedule, j.scheduled,
           s.job_status, s.last_run_started_at, s.last_run_status, s.last_successful_finish, s.next_start,
           coalesce(s.total_runs, 0)::int AS total_runs, coalesce(s.total_failures, 0)::int AS total_failures
    FROM timescaledb_information.jobs j
    LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
    ORDER BY j.job_id`;
  const errors = new Map<number, TimescaleJob["last_error"]>();
  if (views.errors) {
    const errs = await sql`
      SELECT DISTINCT ON (job_id) job_id, finish_time, sqlerrcode, err_message
      FROM timescaledb_information.job_errors ORDER BY job_id, finish_time DESC NULLS LAST`;
    for (const e of errs)
      errors.set(e.job_id, { at: iso(e.finish_time), code: e.sqlerrcode ?? null, message: e.err_message ?? "" });
  }
  return rows.map((r) => ({
    id: r.job_id,
    proc: r.proc_name,
    hypertable: r.hypertable_name ?? null,
    schedule: r.schedule,
    scheduled: r.scheduled,
    job_status: r.job_status ?? null,
    last_run: iso(r.last_run_started_at),
    last_run_status: r.last_run_status ?? null,
    last_success: iso(r.last_successful_finish),
    next_start: iso(r.next_start),
    total_runs: r.total_runs,
    total_failures: r.total_failures,
    last_error: errors.get(r.job_id) ?? null,
  }));
}

/** One line per job, e.g. `1000 policy_compression on readings, every 12:00:00: last run ... Failed (1 of 3 runs failed) ...`. */
export function renderJob(j: TimescaleJob): string {
  const what = `${j.id} ${j.proc}${j.hypertable ? ` on ${j.hypertable}` : ""}, every ${j.schedule}${j.scheduled ? "" : " (not scheduled)"}`;
  const run = j.last_run ? `last run ${j.last_run} ${j.last_run_status ?? "(running)"}` : "never run";
  const failures = j.total_failures > 0 ? ` (${j.total_failures} of ${j.total_runs} runs failed)` : "";
  const next = j.next_start ? `, next ${j.next_start}` : "";
  const error = j.last_error
    ? `; last error${j.last_error.at ? ` ${j.last_error.at}` : ""}: ${j.last_error.code ? `${j.last_error.code} ` : ""}${j.last_error.message}`
    : "";
  return `${what}: ${run}${failures}${next}${error}`;
}
