/**
 * A route's stored batches (decisions 0610, 0611): only batches whose first attempt failed are
 * stored (with the rest of their take), then retried on the schedule from here, one at a time,
 * oldest first; when the schedule runs out a batch becomes failed (the route's failed list).
 */
import type { Sql } from "../db/client.ts";
import type { RoutedReading } from "../core/routes.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import type { Batch, SendOutcome } from "./route-send.ts";

const log = logger("routes");

export interface Pending extends Batch {
  readings: RoutedReading[];
  attempts: number;
  wait_ms: number;
}

export interface Counters {
  delivered: number;
  failed: number;
  retried: number;
}

export async function nextPending(sql: Sql, routeId: string): Promise<Pending | null> {
  const [row] = await sql`
    SELECT id, readings, attempts,
           greatest(0, extract(epoch FROM next_attempt_at - now()) * 1000)::float8 AS wait_ms
    FROM route_batches WHERE route_id = ${routeId} AND status = 'pending' ORDER BY n LIMIT 1`;
  return (row as Pending | undefined) ?? null;
}

type Failure = Extract<SendOutcome, { ok: false }>;

/** Logs and counts a failed attempt; the delay before the next one, or undefined when it was the last. */
function failedAttempt(
  routeId: string,
  batchId: string,
  attempt: number,
  schedule: readonly number[],
  f: Failure,
  c: Counters,
) {
  const delay = schedule[attempt];
  if (delay === undefined) {
    c.failed++;
    metrics.routeDeliveries.inc({ result: "failed" });
    log.warn({ route: routeId, batch: batchId, attempts: attempt, err: f.detail }, "route batch failed for good");
  } else {
    c.retried++;
    metrics.routeDeliveries.inc({ result: "retried" });
    log.info({ route: routeId, batch: batchId, attempt, err: f.detail, retryInMs: delay }, "route batch retried");
  }
  return delay;
}

/** Records the outcome of a stored batch's attempt. */
export async function recordAttempt(
  sql: Sql,
  routeId: string,
  batch: Pending,
  outcome: SendOutcome,
  schedule: readonly number[],
  c: Counters,
): Promise<void> {
  const attempt = batch.attempts + 1;
  if (outcome.ok) {
    await sql`DELETE FROM route_batches WHERE id = ${batch.id}`;
    c.delivered += batch.readings.length;
    metrics.routeDeliveries.inc({ result: "delivered" });
    return;
  }
  const delay = failedAttempt(routeId, batch.id, attempt, schedule, outcome, c);
  if (delay === undefined)
    await sql`
      UPDATE route_batches SET status = 'failed', attempts = ${attempt}, last_error = ${outcome.error}, failed_at = now()
      WHERE id = ${batch.id}`;
  else
    await sql`
      UPDATE route_batches SET attempts = ${attempt}, last_error = ${outcome.error},
             next_attempt_at = now() + ${delay} * interval '1 millisecond'
      WHERE id = ${batch.id}`;
}

/**
 * The first attempt of `rest[0]` failed: stores it (attempted once) and the batches after it
 * (not attempted), and moves the route's position past the take, in one transaction fenced on
 * the position this worker read. Ids already stored (another process did the same) are kept.
 */
export async function storeRest(
  sql: Sql,
  route: { id: string; range: { first: number; last: number; after: number; to: number } },
  rest: Batch[],
  outcome: Failure,
  schedule: readonly number[],
  c: Counters,
): Promise<void> {
  const delay = failedAttempt(route.id, rest[0]!.id, 1, schedule, outcome, c);
  const { first, last, after, to } = route.range;
  await sql.begin(async (tx) => {
    const moved = await tx`
      UPDATE routes SET consumed_seq = ${to}, inflight_to = NULL
      WHERE id = ${route.id} AND consumed_seq = ${after} RETURNING id`;
    if (moved.length === 0) throw new Error("the route's position moved elsewhere (another instance, or a reset)");
    for (const [i, b] of rest.entries()) {
      const tried = i === 0;
      await tx`
        INSERT INTO route_batches (id, route_id, first_seq, last_seq, readings, count, status, attempts, last_error,
                                   next_attempt_at, failed_at)
        VALUES (${b.id}, ${route.id}, ${first}, ${last}, ${JSON.stringify(b.readings)}::text::json, ${b.readings.length},
                ${tried && delay === undefined ? "failed" : "pending"}, ${tried ? 1 : 0}, ${tried ? outcome.error : null},
                now() + ${tried ? (delay ?? 0) : 0} * interval '1 millisecond',
                ${tried && delay === undefined ? tx`now()` : null})
        ON CONFLICT (id) DO NOTHING`;
    }
  });
}
