/**
 * Soft memory limit. JavaScriptCore collects late when a process allocates fast (ingest taking
 * 100k+ readings/s makes request bodies, records and envelopes by the hundred megabytes), so RSS
 * climbs far above what is live: measured in the benchmark, 244 MiB at rest after a batched run
 * and a 292 MiB peak while a 1M backlog was pushed, against 133 / 231 MiB with a full collection
 * every second. Every CHECK_MS, while the JavaScript heap is a sizeable part of RSS and RSS is
 * above the limit: one synchronous full collection (`Bun.gc(true)`), at most one every MIN_GAP_MS.
 * Like Go's GOMEMLIMIT it is soft: live data above the limit stays, the process only collects more
 * often. With JavaScriptCore's heap sized for TELEMETRY_JSC_RAM_SIZE (server/jsc-heap.ts) RSS
 * stays under the limit at 5,000 single-record req/s, so the pause is paid only under a batched
 * flood; a concurrent tier below this one (`Bun.gc(false)`) held the 1M-backlog peak 25 MiB
 * worse and was removed. Decisions 0007, 0510, 0540.
 */
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";

const log = logger("memory");
const CHECK_MS = 500;
const MIN_GAP_MS = 1_000;
export type Collection = "none" | "full";

/**
 * Whether to force a full collection now (pure; `last` is the previous forced one's time,
 * -Infinity if none). Only when the JavaScript heap is a third of the limit or more: RSS is also
 * the runtime, the JIT and the allocator's pages, and a full collection of a small heap frees
 * nothing but still pauses (at 5,000 single-record req/s RSS hovered near 192 MiB with a 20–70 MiB
 * heap before TELEMETRY_JSC_RAM_SIZE: forced collections there took p99 from 27 to 90 ms).
 */
export function collectionFor(
  m: { rss: number; heap: number },
  limitBytes: number,
  nowMs: number,
  last: number,
  minGapMs = MIN_GAP_MS,
): Collection {
  if (limitBytes <= 0 || m.rss <= limitBytes || m.heap < limitBytes / 3) return "none";
  return nowMs - last >= minGapMs ? "full" : "none";
}

export interface MemoryGovernor {
  stop(): void;
}

export function startMemoryGovernor(
  limitBytes: number,
  deps: {
    memory?: () => { rss: number; heap: number };
    gc?: () => void;
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
  const gc = deps.gc ?? (() => Bun.gc(true));
  const now = deps.now ?? (() => performance.now());
  let last = -Infinity;
  const timer = setInterval(() => {
    const before = memory();
    const t = now();
    const kind = collectionFor(before, limitBytes, t, last);
    if (kind === "none") return;
    last = t;
    gc();
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
