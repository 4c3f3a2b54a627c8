/**
 * Applies the embedded migrations once each, in one transaction under an advisory lock (several
 * processes may start at once), detects TimescaleDB, and sets its policies from the config.
 */
import { createHash } from "node:crypto";
import { formatDuration } from "../core/duration.ts";
import { logger } from "../lib/log.ts";
import type { TransactionSql } from "postgres";
import type { Sql } from "./client.ts";
import { MIGRATIONS } from "./migrations.ts";

const log = logger("migrate");
const LOCK_ID = 7_302_514_001; // arbitrary, constant: pg_advisory_xact_lock key for migrations

export type StorageMode = "timescaledb" | "postgresql";

export interface MigrateOptions {
  timescale: "auto" | "on" | "off";
  retentionMs: number | null;
  compressAfterMs: number;
}

export interface MigrateResult {
  mode: StorageMode;
  applied: string[];
}

export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

const checksum = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);

export async function migrate(sql: Sql, opts: MigrateOptions): Promise<MigrateResult> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_ID})`;
    await tx`CREATE TABLE IF NOT EXISTS telemetry_migrations (
      name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    const mode = await detectMode(tx, opts.timescale);
    const done = new Map((await tx`SELECT name, checksum FROM telemetry_migrations`).map((r) => [r.name as string, r.checksum as string]));
    const applied: string[] = [];
    for (const m of MIGRATIONS) {
      if (m.when === "timescaledb" && mode !== "timescaledb") continue;
      const sum = checksum(m.sql);
      const previous = done.get(m.name);
      if (previous !== undefined) {
        if (previous !== sum) throw new MigrationError(`migration ${m.name} was changed after it was applied (checksum ${previous} -> ${sum})`);
        continue;
      }
      await tx.unsafe(m.sql);
      await tx`INSERT INTO telemetry_migrations (name, checksum) VALUES (${m.name}, ${sum})`;
      applied.push(m.name);
    }
    await tx`INSERT INTO telemetry_meta (key, value) VALUES ('storage_mode', ${mode})
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`;
    if (mode === "timescaledb") await applyPolicies(tx, opts);
    if (applied.length > 0) log.info({ applied, mode }, "migrations applied");
    return { mode, applied };
  });
}

async function detectMode(tx: TransactionSql, wanted: MigrateOptions["timescale"]): Promise<StorageMode> {
  if (wanted === "off") return "postgresql";
  const [installed] = await tx`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`;
  if (installed) return "timescaledb";
  const [available] = await tx`SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'`;
  if (available) {
    try {
      await tx.savepoint((sp) => sp`CREATE EXTENSION IF NOT EXISTS timescaledb`);
      return "timescaledb";
    } catch (err) {
      if (wanted === "on") throw new MigrationError(`TimescaleDB is installed but cannot be enabled: ${(err as Error).message}`);
      log.warn({ err: (err as Error).message }, "TimescaleDB is available but could not be enabled; using plain PostgreSQL");
      return "postgresql";
    }
  }
  if (wanted === "on") throw new MigrationError("TELEMETRY_TIMESCALE=on but the timescaledb extension is not available on this server");
  return "postgresql";
}

/** Compression and retention policies: removed and re-added only when the wanted interval differs. */
async function applyPolicies(tx: TransactionSql, opts: MigrateOptions): Promise<void> {
  const jobs = await tx`SELECT proc_name, config FROM timescaledb_information.jobs WHERE hypertable_name = 'readings'`;
  const current = (proc: string, key: string) => {
    const job = jobs.find((j) => j.proc_name === proc);
    return job ? String((job.config as Record<string, unknown>)[key] ?? "") : null;
  };
  const compress = `${opts.compressAfterMs / 1000} seconds`;
  if (!sameInterval(current("policy_compression", "compress_after"), opts.compressAfterMs)) {
    await tx`SELECT remove_compression_policy('readings', if_exists => TRUE)`;
    await tx`SELECT add_compression_policy('readings', ${compress}::interval)`;
    log.info({ compressAfter: formatDuration(opts.compressAfterMs) }, "compression policy set");
  }
  const retention = current("policy_retention", "drop_after");
  if (opts.retentionMs === null) {
    if (retention !== null) await tx`SELECT remove_retention_policy('readings', if_exists => TRUE)`;
  } else if (!sameInterval(retention, opts.retentionMs)) {
    await tx`SELECT remove_retention_policy('readings', if_exists => TRUE)`;
    await tx`SELECT add_retention_policy('readings', ${`${opts.retentionMs / 1000} seconds`}::interval)`;
    log.info({ retention: formatDuration(opts.retentionMs) }, "retention policy set");
  }
}

/** Compares a TimescaleDB job interval ("7 days", "02:00:00", "1 day 02:00:00") with milliseconds. */
function sameInterval(text: string | null, ms: number): boolean {
  if (text === null) return false;
  let total = 0;
  const days = /(-?\d+) days?/.exec(text);
  if (days) total += Number(days[1]) * 86_400_000;
  const time = /(\d+):(\d+):(\d+(?:\.\d+)?)/.exec(text);
  if (time) total += (Number(time[1]) * 3600 + Number(time[2]) * 60 + Number(time[3])) * 1000;
  return total === ms;
}
