/**
 * Retention on plain PostgreSQL (TimescaleDB uses its retention policies instead): deletes readings
 * and 1-minute rollups older than their retention periods in small chunks, so a large backlog never
 * holds long locks.
 */
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import { logger } from "../lib/log.ts";

const log = logger("retention");
const CHUNK = 10_000;

/** Deletes readings older than `retentionMs`; returns the number of rows removed. */
export function pruneReadings(sql: Sql, retentionMs: number): Promise<number> {
  return pruneOlder(sql, "readings", "ts", retentionMs);
}

/** Deletes rollups whose minute began more than `retentionMs` ago; returns the number of rows removed. */
export function pruneRollups(sql: Sql, retentionMs: number): Promise<number> {
  return pruneOlder(sql, "readings_1m", "bucket", retentionMs);
}

async function pruneOlder(
  sql: Sql,
  table: "readings" | "readings_1m",
  column: "ts" | "bucket",
  retentionMs: number,
): Promise<number> {
  const cutoff = new Date(Date.now() - retentionMs).toISOString();
  let total = 0;
  for (;;) {
    const result = await sql`
      DELETE FROM ${sql(table)} WHERE ctid IN (
        SELECT ctid FROM ${sql(table)} WHERE ${sql(column)} < ${cutoff}::timestamptz LIMIT ${CHUNK})`;
    total += result.count;
    if (result.count < CHUNK) return total;
  }
}

export interface RetentionPeriods {
  readingsMs: number | null;
  rollupsMs: number | null;
}

/** Prunes now and then every `everyMs` (each table whose period is set); returns a stop function. */
export function startRetention(sql: Sql, periods: RetentionPeriods, everyMs = 3_600_000): () => void {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      if (periods.readingsMs !== null) {
        const removed = await pruneReadings(sql, periods.readingsMs);
        if (removed > 0) log.info({ removed }, "old readings removed");
      }
      if (periods.rollupsMs !== null) {
        const removed = await pruneRollups(sql, periods.rollupsMs);
        if (removed > 0) log.info({ removed }, "old rollups removed");
      }
    } catch (err) {
      log.warn({ err: errorText(err) }, "retention run failed; will try again");
    } finally {
      running = false;
    }
  };
  void run();
  const timer = setInterval(run, everyMs);
  return () => clearInterval(timer);
}
