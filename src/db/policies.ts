/**
 * TimescaleDB compression and retention policies of the hypertables, from the config: each one is
 * removed and added again only when the wanted interval differs from the job's.
 */
import type { TransactionSql } from "postgres";
import { formatDuration } from "../core/duration.ts";
import { logger } from "../lib/log.ts";

const log = logger("migrate");

export interface TablePolicy {
  table: "readings" | "readings_1m";
  compressAfterMs: number;
  /** null: no retention policy (keep everything). */
  retentionMs: number | null;
}

export async function applyPolicies(tx: TransactionSql, policies: TablePolicy[]): Promise<void> {
  for (const policy of policies) await applyTablePolicy(tx, policy);
}

async function applyTablePolicy(
  tx: TransactionSql,
  { table, compressAfterMs, retentionMs }: TablePolicy,
): Promise<void> {
  const jobs =
    await tx`SELECT proc_name, config FROM timescaledb_information.jobs WHERE hypertable_schema = current_schema() AND hypertable_name = ${table}`;
  const current = (proc: string, key: string) => {
    const job = jobs.find((j) => j.proc_name === proc);
    return job ? String((job.config as Record<string, unknown>)[key] ?? "") : null;
  };
  if (!sameInterval(current("policy_compression", "compress_after"), compressAfterMs)) {
    await tx`SELECT remove_compression_policy(${table}::regclass, if_exists => TRUE)`;
    await tx`SELECT add_compression_policy(${table}::regclass, ${`${compressAfterMs / 1000} seconds`}::interval)`;
    log.info({ table, compressAfter: formatDuration(compressAfterMs) }, "compression policy set");
  }
  const retention = current("policy_retention", "drop_after");
  if (retentionMs === null) {
    if (retention !== null) {
      await tx`SELECT remove_retention_policy(${table}::regclass, if_exists => TRUE)`;
      log.info({ table }, "retention policy removed");
    }
  } else if (!sameInterval(retention, retentionMs)) {
    await tx`SELECT remove_retention_policy(${table}::regclass, if_exists => TRUE)`;
    await tx`SELECT add_retention_policy(${table}::regclass, ${`${retentionMs / 1000} seconds`}::interval)`;
    log.info({ table, retention: formatDuration(retentionMs) }, "retention policy set");
  }
}

/** Compares a TimescaleDB job interval ("7 days", "02:00:00", "1 day 02:00:00") with milliseconds. */
export function sameInterval(text: string | null, ms: number): boolean {
  if (text === null) return false;
  let total = 0;
  const days = /(-?\d+) days?/.exec(text);
  if (days) total += Number(days[1]) * 86_400_000;
  const time = /(\d+):(\d+):(\d+(?:\.\d+)?)/.exec(text);
  if (time) total += (Number(time[1]) * 3600 + Number(time[2]) * 60 + Number(time[3])) * 1000;
  return total === ms;
}
