/**
 * One active route's delivery loop (decisions 0610, 0611). One step at a time, so a route's
 * readings go out in stream order (per device order follows):
 *
 * - Stored batches first (route-pending.ts): the oldest pending one is attempted on the schedule.
 * - Otherwise a take, sending first: read the tenant's messages after the route's position
 *   (`consumed_seq`), record the range about to be sent (`inflight_to`, fenced on the position),
 *   form its batches (ids derived from the route, its filter and the range: route-reader.ts reads
 *   the same messages again after a crash, so the same batches with the same ids are formed),
 *   send them, then move `consumed_seq` to the end of the range. Nothing is written per batch
 *   unless a first attempt fails: then that batch and the rest of the take are stored (retried
 *   from there) in the transaction that moves the position.
 *
 * Nothing here waits on the writer or the evaluator, nor they on this: the route reads the stream
 * with its own consumer, and a slow destination only makes this route's lag grow.
 */
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import { batchId, chunk, compileFilter, type RouteFilter, type RoutedReading } from "../core/routes.ts";
import { tenantFilter } from "../core/subject.ts";
import { backoffMs } from "../lib/backoff.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import { pendingAfter } from "../nats/pending.ts";
import type { Decoded } from "./route-decoded.ts";
import { nextPending, recordAttempt, storeRest } from "./route-pending.ts";
import { openRouteReader, type RouteReader, type Seen } from "./route-reader.ts";
import { sendBatch, type Batch, type RouteTarget, type SendDeps } from "./route-send.ts";

const log = logger("routes");

export interface RouteRow extends RouteTarget {
  filter: RouteFilter;
  consumedSeq: number;
  /** The end of a take sent but not yet recorded as done (a crash, a stop or another instance). */
  inflightTo: number | null;
}

export interface WorkerOptions {
  stream: string;
  scheduleMs: readonly number[];
  /** Most stream messages read per take. */
  fetchMax: number;
  /** How long a take waits for messages when the route is caught up. */
  idleMs: number;
  /** Decoded messages shared by the process's routes. */
  decoded: Decoded;
}

export interface RouteStats {
  /** Messages of the tenant in the stream after the route's position (at the last take). */
  lag: number;
  delivered: number;
  failed: number;
  retried: number;
}

export interface RouteWorker {
  readonly stats: RouteStats;
  stop(): Promise<void>;
}

function matching(seen: Seen[], decoded: Decoded, match: ReturnType<typeof compileFilter>): RoutedReading[] {
  const out: RoutedReading[] = [];
  for (const m of seen)
    for (const r of decoded.readings(m.seq, m.data) ?? []) {
      const x = match(r);
      if (x) out.push(x);
    }
  return out;
}

export function startRouteWorker(
  sql: Sql,
  send: Omit<SendDeps, "signal">,
  route: RouteRow,
  o: WorkerOptions,
): RouteWorker {
  const stats: RouteStats = { lag: 0, delivered: 0, failed: 0, retried: 0 };
  const halt = new AbortController();
  const deps = { ...send, signal: halt.signal };
  const match = compileFilter(route.filter);
  const filterKey = JSON.stringify(route.filter);
  let position = route.consumedSeq;
  let inflightTo = route.inflightTo;
  /** Messages read past the current take's range: the next take starts with them. */
  let carry: Seen[] = [];
  let reader: RouteReader | null = null;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (halt.signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        halt.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      halt.signal.addEventListener("abort", done, { once: true });
    });

  const closeReader = () => {
    reader?.stop();
    reader = null;
    carry = [];
  };

  /** The messages of the take's range (position, inflightTo], fixing inflightTo first when unset. */
  const collect = async (): Promise<Seen[] | null> => {
    const r = (reader ??= await openRouteReader(
      send.broker.js,
      o.stream,
      route.tenant,
      position,
      o.fetchMax,
      route.id,
    ));
    let seen = carry.length > 0 ? carry : await r.next(o.idleMs);
    carry = [];
    if (seen.length === 0 && r.ended) throw new Error("the route's stream consumer ended");
    if (inflightTo === null) {
      if (seen.length === 0) {
        stats.lag = 0;
        return null;
      }
      const propose = seen[Math.min(seen.length, o.fetchMax) - 1]!.seq;
      const [row] = await sql`
        UPDATE routes SET inflight_to = coalesce(inflight_to, ${propose})
        WHERE id = ${route.id} AND consumed_seq = ${position} RETURNING inflight_to::float8 AS to`;
      if (!row) throw new Error("the route's position moved elsewhere (another instance, or a reset)");
      inflightTo = row.to as number;
    }
    const to = inflightTo;
    while ((seen.at(-1)?.seq ?? position) < to && !halt.signal.aborted) {
      const more = await r.next(o.idleMs);
      if (more.length === 0) {
        if (r.ended) throw new Error("the route's stream consumer ended");
        // The rest of the range is no longer in the stream (it aged out while the route waited).
        const after = seen.at(-1)?.seq ?? position;
        if ((await pendingAfter(send.broker.jsm, o.stream, tenantFilter(route.tenant), after)) === 0) break;
      }
      seen = seen.concat(more);
    }
    if (halt.signal.aborted) return null;
    const end = seen.findIndex((m) => m.seq > to);
    if (end >= 0) {
      carry = seen.slice(end);
      seen = seen.slice(0, end);
    }
    return seen;
  };

  const done = async (to: number, lag: number) => {
    const moved = await sql`
      UPDATE routes SET consumed_seq = ${to}, inflight_to = NULL
      WHERE id = ${route.id} AND consumed_seq = ${position} RETURNING id`;
    if (moved.length === 0) throw new Error("the route's position moved elsewhere (another instance, or a reset)");
    position = to;
    inflightTo = null;
    stats.lag = lag;
  };

  const take = async () => {
    const seen = await collect();
    if (seen === null || inflightTo === null) return;
    const to = inflightTo;
    const first = seen[0]?.seq ?? to;
    const last = seen.at(-1)?.seq ?? to;
    const batches: Batch[] = chunk(matching(seen, o.decoded, match)).map((readings, i) => ({
      id: batchId(route.id, filterKey, first, last, i),
      readings,
    }));
    if (batches.length > 0 && (o.scheduleMs[0] ?? 0) > 0) await pause(o.scheduleMs[0]!);
    for (const [i, batch] of batches.entries()) {
      if (halt.signal.aborted) return;
      const outcome = await sendBatch(route, batch, deps);
      if (outcome.ok) {
        stats.delivered += batch.readings.length;
        metrics.routeDeliveries.inc({ result: "delivered" });
        continue;
      }
      if (halt.signal.aborted) return; // cut short by stop: not an attempt; sent again at the next start
      const range = { first, last, after: position, to };
      await storeRest(sql, { id: route.id, range }, batches.slice(i), outcome, o.scheduleMs, stats);
      position = to;
      inflightTo = null;
      return;
    }
    await done(to, seen.at(-1)?.pending ?? 0);
  };

  const deliverStored = async () => {
    const batch = await nextPending(sql, route.id);
    if (!batch) return false;
    if (batch.wait_ms > 0) await pause(batch.wait_ms);
    if (halt.signal.aborted) return true;
    const outcome = await sendBatch(route, batch, deps);
    if (halt.signal.aborted && !outcome.ok) return true; // cut short by stop: not an attempt
    await recordAttempt(sql, route.id, batch, outcome, o.scheduleMs, stats);
    return true;
  };

  const loop = async () => {
    for (let failures = 0; !halt.signal.aborted; ) {
      try {
        if (!(await deliverStored())) await take();
        failures = 0;
      } catch (err) {
        if (halt.signal.aborted) break;
        // Start again from what the database says.
        closeReader();
        const [row] = await sql`
          SELECT consumed_seq::float8 AS seq, inflight_to::float8 AS to FROM routes WHERE id = ${route.id}`.catch(
          () => [],
        );
        if (row) {
          position = row.seq as number;
          inflightTo = row.to as number | null;
        }
        const wait = backoffMs(failures++, 500, 30_000);
        log.warn({ route: route.id, err: errorText(err), retryInMs: wait }, "route delivery step failed; retrying");
        await pause(wait);
      }
    }
  };

  const running = loop().finally(closeReader);
  return {
    stats,
    async stop() {
      halt.abort();
      await running;
    },
  };
}
