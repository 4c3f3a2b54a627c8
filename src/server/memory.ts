/**
 * Soft memory limit. JavaScriptCore collects late when a process allocates fast (ingest taking
 * 100k+ readings/s makes request bodies, records and envelopes by the hundred megabytes), so RSS
 * climbs far above what is live: measured in the benchmark, 244 MiB at rest after a batched run
 * and a 292 MiB peak while a 1M backlog was pushed, against 133 / 231 MiB with a full collection
 * every second. Every CHECK_MS, while the JavaScript heap is a sizeable part of RSS:
 * - RSS above the limit: a concurrent full collection is asked for (`Bun.gc(false)`: the call returns
 *   in ~1–2 ms and the collection runs beside the event loop, not the 40–80 ms of a synchronous one);
 * - RSS above the limit by a fifth (HARD_FACTOR: 230 MiB at the default) still: one synchronous full collection, the
 *   pause paid only when the concurrent ones did not keep up.
 * At most one of each every MIN_GAP_MS. Like Go's GOMEMLIMIT it is soft: live data above the limit
 * stays, the process only collects more often. With JavaScriptCore's heap sized for
 * TELEMETRY_JSC_RAM_SIZE (server/jsc-heap.ts) neither tier fired at 5,000 single-record req/s in
 * the runs of decision 0540; one synchronous tier at the limit held the 1M-backlog peak ~25 MiB
 * lower there but paused single records (110–120 ms) in a third of the runs, so the tiers stay.
 * Decision 0007 (0510 for the two tiers, 0540).
 */
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";

const log = logger("memory");
const CHECK_MS = 500;
const MIN_GAP_MS = 1_000;
/** RSS above limit × HARD_FACTOR: the synchronous collection. */
export const HARD_FACTOR = 1.2;

export type Collection = "none" | "concurrent" | "full";

/**
 * Which collection to force now (pure; `last` holds the previous forced ones' times, -Infinity if
 * none). Only when the JavaScript heap is a third of the limit or more: RSS is also the runtime, the
 * JIT and the allocator's pages, and a full collection of a small heap frees nothing but still pauses
 * (at 5,000 single-record req/s RSS hovers near 192 MiB with a 20–70 MiB heap: forced synchronous
 * collections there took p99 from 27 to 38 ms, and later to 90 ms).
 */
export function collectionFor(
  m: { rss: number; heap: number },
  limitBytes: number,
  nowMs: number,
  last: { concurrent: number; full: number },
  minGapMs = MIN_GAP_MS,
): Collection {
  if (limitBytes <= 0 || m.rss <= limitBytes || m.heap < limitBytes / 3) return "none";
  if (m.rss > limitBytes * HARD_FACTOR && nowMs - last.full >= minGapMs) return "full";
  return nowMs - last.concurrent >= minGapMs ? "concurrent" : "none";
}

export interface MemoryGovernor {
  stop(): void;
}

export function startMemoryGovernor(
  limitBytes: number,
  deps: {
    memory?: () => { rss: number; heap: number };
    gc?: (sync: boolean) => void;
    now?: () => number;
  } = {},
): MemoryGovernor {
  if (limitBytes <= 0) return { stop() {} };
  const memory =
    deps.memory ??
    (() => {
      const m = process.memoryUsage();
      return { rss: m.rss, heap: m.heapUsed };
    });
  const gc = deps.gc ?? ((sync: boolean) => Bun.gc(sync));
  const now = deps.now ?? (() => performance.now());
  const last = { concurrent: -Infinity, full: -Infinity };
  const timer = setInterval(() => {
    const before = memory();
    const t = now();
    const kind = collectionFor(before, limitBytes, t, last);
    if (kind === "none") return;
    last[kind] = t;
    gc(kind === "full");
    const seconds = (now() - t) / 1000;
    metrics.forcedGc.inc({ kind });
    metrics.forcedGcSeconds.inc({ kind }, seconds);
    const after = memory();
    log.debug(
      {
        kind,
        rssMiB: Math.round(before.rss / 2 ** 20),
        heapMiB: Math.round(before.heap / 2 ** 20),
        afterRssMiB: Math.round(after.rss / 2 ** 20),
        afterHeapMiB: Math.round(after.heap / 2 ** 20),
        ms: Math.round(seconds * 1000),
      },
      "RSS above the soft limit: collection",
    );
  }, CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
