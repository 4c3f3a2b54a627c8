/**
 * Rate limits across ingest processes (decision 0560): each process announces itself and its
 * per-tenant demand in a NATS JetStream KV bucket (`telemetry_rates`, stream
 * `KV_telemetry_rates`, the layout `nats kv` uses: one key per process, last value kept, entries
 * expire after the stale bound), watches everyone's announcements (an ordered consumer from the
 * last value of each key, as a KV watch does) and sets its limiter's shares (core/rate-share.ts).
 * Everything here runs on a timer and on the watch; the request path only reads the shares.
 *
 * A process's own announcement not coming back within the stale bound (the bucket or the broker
 * unreachable) gives the limiter the whole limit again: it errs lenient, as a single process.
 */
import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { nuid } from "@nats-io/transport-node";
import { computeShares, smoothDemand, type Announcement } from "../core/rate-share.ts";
import { sleep } from "../lib/backoff.ts";
import { logger } from "../lib/log.ts";
import type { Broker } from "../nats/connection.ts";
import { KvBucket } from "../nats/kv.ts";
import type { RateLimiter } from "./limits.ts";

const log = logger("rate-share");

export const RATE_BUCKET = "telemetry_rates";
/** An announcement older than this many intervals no longer counts (its process is gone). */
const STALE_INTERVALS = 3;
/** Tenants one announcement names at most (the busiest); the rest count as no demand. */
export const MAX_ANNOUNCED_TENANTS = 10_000;
/** The bucket's size bound (one key per process, each at most ~300 kB): full, announcements fail and the processes fall back to their whole limits. */
const MAX_BUCKET_BYTES = 64 * 1024 * 1024;
/** How long the start waits to have heard the processes already running. */
const START_WAIT_MS = 2_000;

export interface RateSharingOptions {
  intervalMs: number;
  replicas: number;
  now?: () => number;
}

export interface RateSharing {
  readonly processId: string;
  /** Processes counted in the shares now (self included). */
  processes(): number;
  /** Leaves the bucket at once (its share goes back to the others within one interval). */
  stop(): Promise<void>;
}

export async function startRateSharing(
  broker: Broker,
  limiter: RateLimiter,
  o: RateSharingOptions,
): Promise<RateSharing> {
  const now = o.now ?? Date.now;
  const staleMs = STALE_INTERVALS * o.intervalMs;
  const processId = nuid.next();
  const heard = new Map<string, Announcement>();
  let processes = 1;
  let stopped = false;
  let caughtUp = false;

  const reshare = () => {
    const t = now();
    for (const [id, a] of heard) if (t - a.heardAt > staleMs) heard.delete(id);
    const shares = computeShares(processId, heard, t, staleMs);
    processes = shares.processes;
    limiter.setShares(shares);
  };

  // Never fatal: without the bucket every process applies its whole limit until it is there.
  let kv: KvBucket | null = await openBucket(broker, o.replicas, staleMs).catch((err) => {
    log.warn({ err: (err as Error).message }, "no rate bucket yet; the whole limits apply");
    return null;
  });
  limiter.takeDemand(); // starts the counting
  let smoothed = new Map<string, number>();
  let last = now();
  const announce = async () => {
    kv ??= await openBucket(broker, o.replicas, staleMs);
    const t = now();
    const seconds = Math.max(0.001, (t - last) / 1000);
    last = t;
    smoothed = nextDemand(smoothed, limiter.takeDemand(), seconds);
    await kv.set(processId, JSON.stringify(Object.fromEntries(smoothed)), o.intervalMs);
  };
  await announce().catch((err) => log.warn({ err: (err as Error).message }, "announcing the rate demand failed"));

  let messages: { stop(): void } | null = null;
  const watch = async () => {
    while (!stopped) {
      try {
        const bucket = kv ?? (await openBucket(broker, o.replicas, staleMs));
        kv = bucket;
        const consumer = await broker.js.consumers.get(bucket.stream, {
          filter_subjects: bucket.filter,
          deliver_policy: DeliverPolicy.LastPerSubject,
        });
        const iter = await consumer.consume({ max_messages: 256 });
        messages = iter;
        if (stopped) iter.stop();
        for await (const m of iter) {
          hear(heard, bucket.keyOf(m.subject), m, now());
          if (m.info.pending === 0) caughtUp = true;
          reshare();
        }
        if (!stopped) await sleep(o.intervalMs); // the consumer went away: a new one after a pause
      } catch (err) {
        if (stopped) break;
        log.warn({ err: (err as Error).message }, "watching the rate bucket failed; retrying");
        await sleep(o.intervalMs);
      }
    }
  };
  void watch();
  const deadline = now() + START_WAIT_MS;
  while (!caughtUp && now() < deadline) await sleep(20);

  const timer = setInterval(() => {
    announce().catch((err) => log.debug({ err: (err as Error).message }, "announcing the rate demand failed"));
    reshare();
  }, o.intervalMs);
  timer.unref?.();

  return {
    processId,
    processes: () => processes,
    async stop() {
      stopped = true;
      clearInterval(timer);
      messages?.stop();
      await kv?.purge(processId, 1_000).catch(() => {});
    },
  };
}

/** One watched entry: an announcement, or a process leaving (a delete or purge marker). */
function hear(heard: Map<string, Announcement>, id: string, m: JsMsg, at: number): void {
  const op = m.headers?.get("KV-Operation");
  if (op === "DEL" || op === "PURGE") {
    heard.delete(id);
    return;
  }
  const demand = parseDemand(m.string());
  if (demand) heard.set(id, { heardAt: at, demand });
}

/** An announcement's demand: tenant → records/s, finite and not negative; null if it is not one. */
export function parseDemand(text: string): Map<string, number> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const demand = new Map<string, number>();
  for (const [tenant, d] of Object.entries(value)) {
    if (demand.size >= MAX_ANNOUNCED_TENANTS) break;
    if (typeof d === "number" && Number.isFinite(d) && d > 0) demand.set(tenant, d);
  }
  return demand;
}

/** Smoothed records/s per tenant after an interval of `seconds` in which `asked` records were asked for. */
function nextDemand(previous: Map<string, number>, asked: Map<string, number>, seconds: number): Map<string, number> {
  const next = new Map<string, number>();
  for (const [tenant, d] of previous) {
    const v = smoothDemand(d, (asked.get(tenant) ?? 0) / seconds);
    if (v > 0) next.set(tenant, Math.round(v * 100) / 100);
  }
  for (const [tenant, n] of asked) if (!previous.has(tenant)) next.set(tenant, smoothDemand(0, n / seconds));
  if (next.size <= MAX_ANNOUNCED_TENANTS) return next;
  return new Map([...next].sort((a, b) => b[1] - a[1]).slice(0, MAX_ANNOUNCED_TENANTS));
}

/** The KV bucket, created by the first process (a creation race is fine); retried ~5 s. */
async function openBucket(broker: Broker, replicas: number, ttlMs: number): Promise<KvBucket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await KvBucket.open(broker.js, broker.jsm, RATE_BUCKET, {
        replicas,
        memory: true,
        maxAgeMs: ttlMs,
        maxBytes: MAX_BUCKET_BYTES,
      });
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(250);
    }
  }
}
