/**
 * Retention on plain PostgreSQL (TimescaleDB uses its retention policy instead): deletes readings
 * older than the retention period in small chunks, so a large backlog never holds long locks.
 */
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import { logger } from "../lib/log.ts";

const log = logger("retention");
const CHUNK = 10_000;

/** Deletes everything older than `retentionMs`; returns the number of rows removed. */
export async function pruneReadings(sql: Sql, retentionMs: number): Promise<number> {
  const cutoff = new Date(Date.now() - retentionMs).toISOString();
  let total = 0;
  for (;;) {
    const result = await sql`
      DELETE FROM readings WHERE ctid IN (
        SELECT ctid FROM readings WHERE ts < ${cutoff}::timestamptz LIMIT ${CHUNK})`;
    total += result.count;
    if (result.count < CHUNK) return total;
  }
}

/** Runs pruneReadings now and then every `everyMs`; returns a stop function. */
export function startRetention(sql: Sql, retentionMs: number, everyMs = 3_600_000): () => void {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      const removed = await pruneReadings(sql, retentionMs);
      if (removed > 0) log.info({ removed }, "old readings removed");
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
