/**
 * Soft memory limit. JavaScriptCore collects late when a process allocates fast (ingest taking
 * 100k+ readings/s makes request bodies, records and envelopes by the hundred megabytes), so RSS
 * climbs far above what is live: measured in the benchmark, 244 MiB at rest after a batched run
 * and a 292 MiB peak while a 1M backlog was pushed, against 133 / 231 MiB with a full collection
 * every second. Every CHECK_MS, when RSS is above the limit, one full collection runs (at most one
 * every MIN_GAP_MS, and only while the heap is a sizeable part of it): a pause (~60 ms on this machine at these heap sizes) paid only under memory pressure. Like Go's
 * GOMEMLIMIT it is soft: live data above the limit stays, the process only collects more often.
 */
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";

const log = logger("memory");
const CHECK_MS = 500;
const MIN_GAP_MS = 1_000;

/**
 * Whether to force a collection now (pure; `lastAt` is the previous forced one, -Infinity if none).
 * Only when the JavaScript heap is a third of the limit or more: RSS is also the runtime, the JIT
 * and the allocator's pages, and a full collection of a small heap frees nothing but still pauses
 * (at 5,000 single-record req/s RSS hovers near 192 MiB with a 20–70 MiB heap: forced collections
 * there took p99 from 27 to 38 ms).
 */
export function shouldCollect(
  m: { rss: number; heap: number },
  limitBytes: number,
  nowMs: number,
  lastAt: number,
  minGapMs = MIN_GAP_MS,
): boolean {
  return limitBytes > 0 && m.rss > limitBytes && m.heap >= limitBytes / 3 && nowMs - lastAt >= minGapMs;
}

export interface MemoryGovernor {
  stop(): void;
}

export function startMemoryGovernor(
  limitBytes: number,
  deps: { memory?: () => { rss: number; heap: number }; gc?: () => void; now?: () => number } = {},
): MemoryGovernor {
  if (limitBytes <= 0) return { stop() {} };
  const memory =
    deps.memory ??
    (() => {
      const m = process.memoryUsage();
      return { rss: m.rss, heap: m.heapUsed };
    });
  const gc = deps.gc ?? (() => Bun.gc(true));
  const now = deps.now ?? (() => performance.now());
  let lastAt = -Infinity;
  const timer = setInterval(() => {
    const before = memory();
    const t = now();
    if (!shouldCollect(before, limitBytes, t, lastAt)) return;
    lastAt = t;
    gc();
    const seconds = (now() - t) / 1000;
    metrics.forcedGc.inc();
    metrics.forcedGcSeconds.inc(seconds);
    const after = memory();
    log.debug(
      {
        rssMiB: Math.round(before.rss / 2 ** 20),
        heapMiB: Math.round(before.heap / 2 ** 20),
        afterRssMiB: Math.round(after.rss / 2 ** 20),
        afterHeapMiB: Math.round(after.heap / 2 ** 20),
        ms: Math.round(seconds * 1000),
      },
      "RSS above the soft limit: full collection",
    );
  }, CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
