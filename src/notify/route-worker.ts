/**
 * One active route's delivery loop (decision 0610). Two steps, one at a time, so a route's
 * readings go out in stream order (per device order follows):
 *
 * 1. Take: read the tenant's messages from the telemetry stream after the route's position
 *    (an ordered JetStream consumer from `consumed_seq + 1`), keep the readings the filter
 *    matches, and in ONE transaction store them as batches and move `consumed_seq` past them.
 *    A crash before the commit reads the same messages again; after it, never again.
 * 2. Deliver the oldest pending batch, with its constant id (the delivery id), retried on the
 *    schedule; when the schedule is exhausted it becomes failed (the route's failed list) and the
 *    next batch goes. Only a route with no pending batch takes more, so a dead destination holds
 *    at most one take of batches in the database; the rest waits in the stream.
 *
 * Nothing here waits on the writer or the evaluator, nor they on this: the route reads the stream
 * with its own consumer, and a slow destination only makes this route's lag grow.
 */
import { DeliverPolicy } from "@nats-io/jetstream";
import { v4 as uuidv4 } from "uuid";
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import { decodeEnvelope } from "../core/envelope.ts";
import { chunk, compileFilter, type RouteFilter, type RoutedReading } from "../core/routes.ts";
import { tenantFilter } from "../core/subject.ts";
import { backoffMs } from "../lib/backoff.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import { sendBatch, type RouteTarget, type SendDeps } from "./route-send.ts";

const log = logger("routes");

export interface RouteRow extends RouteTarget {
  filter: RouteFilter;
  consumedSeq: number;
}

export interface WorkerOptions {
  stream: string;
  scheduleMs: readonly number[];
  /** Most stream messages read per take. */
  fetchMax: number;
  /** How long a take waits for messages when the route is caught up. */
  idleMs: number;
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

interface Pending {
  id: string;
  readings: RoutedReading[];
  attempts: number;
  wait_ms: number;
}

export function startRouteWorker(
  sql: Sql,
  send: Omit<SendDeps, "signal">,
  route: RouteRow,
  o: WorkerOptions,
): RouteWorker {
  const stats: RouteStats = { lag: 0, delivered: 0, failed: 0, retried: 0 };
  const halt = new AbortController();
  const match = compileFilter(route.filter);
  let position = route.consumedSeq;

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

  const nextPending = async (): Promise<Pending | null> => {
    const [row] = await sql`
      SELECT id, readings, attempts,
             greatest(0, extract(epoch FROM next_attempt_at - now()) * 1000)::float8 AS wait_ms
      FROM route_batches WHERE route_id = ${route.id} AND status = 'pending' ORDER BY n LIMIT 1`;
    return (row as Pending | undefined) ?? null;
  };

  const deliver = async (batch: Pending) => {
    if (batch.wait_ms > 0) await pause(batch.wait_ms);
    if (halt.signal.aborted) return;
    const outcome = await sendBatch(route, batch, { ...send, signal: halt.signal });
    if (halt.signal.aborted && !outcome.ok) return; // cut short by stop: not an attempt
    const attempt = batch.attempts + 1;
    if (outcome.ok) {
      await sql`DELETE FROM route_batches WHERE id = ${batch.id}`;
      stats.delivered += batch.readings.length;
      metrics.routeDeliveries.inc({ result: "delivered" });
      return;
    }
    const delay = o.scheduleMs[attempt];
    if (delay === undefined) {
      await sql`
        UPDATE route_batches SET status = 'failed', attempts = ${attempt}, last_error = ${outcome.error}, failed_at = now()
        WHERE id = ${batch.id}`;
      stats.failed++;
      metrics.routeDeliveries.inc({ result: "failed" });
      log.warn(
        { route: route.id, batch: batch.id, attempts: attempt, err: outcome.detail },
        "route batch failed for good",
      );
    } else {
      await sql`
        UPDATE route_batches SET attempts = ${attempt}, last_error = ${outcome.error},
               next_attempt_at = now() + ${delay} * interval '1 millisecond'
        WHERE id = ${batch.id}`;
      stats.retried++;
      metrics.routeDeliveries.inc({ result: "retried" });
      log.info(
        { route: route.id, batch: batch.id, attempt, err: outcome.detail, retryInMs: delay },
        "route batch retried",
      );
    }
  };

  /** Messages the route's consumer delivered, not yet taken; the reader waits while it is full. */
  type Seen = { seq: number; body: string; pending: number };
  interface Reader {
    buffer: Seen[];
    wake: (() => void) | null;
    room: (() => void) | null;
    /** The consumer's iterator ended (an error, or stop): the next take starts a new one. */
    ended: boolean;
    stop(): void;
  }
  let reader: Reader | null = null;

  const openReader = async () => {
    const consumer = await send.broker.js.consumers.get(o.stream, {
      filter_subjects: tenantFilter(route.tenant),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: position + 1,
    });
    const messages = await consumer.consume({ max_messages: o.fetchMax });
    const r: Reader = { buffer: [], wake: null, room: null, ended: false, stop: () => messages.stop() };
    void (async () => {
      for await (const m of messages) {
        r.buffer.push({ seq: m.seq, body: m.string(), pending: m.info.pending });
        r.wake?.();
        if (r.buffer.length >= o.fetchMax) await new Promise<void>((resolve) => (r.room = resolve));
      }
    })()
      .catch((err) => log.warn({ route: route.id, err: errorText(err) }, "route consumer stopped"))
      .finally(() => {
        r.ended = true;
        r.wake?.();
      });
    return r;
  };

  const closeReader = () => {
    reader?.stop();
    reader?.room?.();
    reader = null;
  };

  const take = async () => {
    const r = (reader ??= await openReader());
    if (r.buffer.length === 0)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, o.idleMs);
        function done() {
          clearTimeout(timer);
          r.wake = null;
          resolve();
        }
        r.wake = done;
      });
    if (r.ended && r.buffer.length === 0) throw new Error("the route's stream consumer ended");
    const seen = r.buffer.splice(0, o.fetchMax);
    r.room?.();
    r.room = null;
    const last = seen.at(-1);
    if (!last) {
      stats.lag = 0;
      return;
    }
    const matched: RoutedReading[] = [];
    for (const m of seen) {
      let readings: ReturnType<typeof decodeEnvelope>["readings"];
      try {
        readings = decodeEnvelope(m.body).readings;
      } catch {
        continue; // the writer dead-letters what it cannot store; routes forward only what it can
      }
      for (const r of readings) {
        const out = match(r);
        if (out) matched.push(out);
      }
    }
    const first = seen[0]!.seq;
    await sql.begin(async (tx) => {
      const moved = await tx`
        UPDATE routes SET consumed_seq = ${last.seq} WHERE id = ${route.id} AND consumed_seq = ${position} RETURNING id`;
      if (moved.length === 0) throw new Error("the route's position moved elsewhere (another instance, or a reset)");
      for (const readings of chunk(matched))
        await tx`
          INSERT INTO route_batches (id, route_id, first_seq, last_seq, readings, count, next_attempt_at)
          VALUES (${uuidv4()}, ${route.id}, ${first}, ${last.seq}, ${tx.json(readings as never)}, ${readings.length},
                  now() + ${o.scheduleMs[0] ?? 0} * interval '1 millisecond')`;
    });
    position = last.seq;
    stats.lag = last.pending;
  };

  const loop = async () => {
    for (let failures = 0; !halt.signal.aborted; ) {
      try {
        const batch = await nextPending();
        if (batch) await deliver(batch);
        else await take();
        failures = 0;
      } catch (err) {
        if (halt.signal.aborted) break;
        // Start again from what the database says: nothing taken but not committed is skipped.
        closeReader();
        const [row] = await sql`SELECT consumed_seq::float8 AS seq FROM routes WHERE id = ${route.id}`.catch(() => []);
        if (row) position = row.seq as number;
        const wait = backoffMs(failures++, 500, 30_000);
        log.warn({ route: route.id, err: errorText(err), retryInMs: wait }, "route delivery step failed; retrying");
        await pause(wait);
      }
    }
  };

  const done = loop().finally(closeReader);
  return {
    stats,
    async stop() {
      halt.abort();
      await done;
    },
  };
}
