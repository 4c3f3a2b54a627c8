/**
 * Samples this process's Prometheus metrics for the dashboard's server charts. One sampler per
 * process (the registry is per process); it starts on the first request for the charts and
 * stops again after IDLE_MS without one, so a server nobody looks at pays nothing.
 */
import { registry } from "../lib/metrics.ts";
import { SampleRing, toSeries, type Point, type Sample } from "./series.ts";

export const SAMPLE_INTERVAL_MS = 2_000;
const HISTORY = 300; // 10 minutes at 2 s
const IDLE_MS = 10 * 60_000;

type MetricValue = { value: number; labels: Record<string, string | number> };

async function values(name: string): Promise<MetricValue[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return [];
  try {
    return ((await metric.get()) as { values: MetricValue[] }).values;
  } catch {
    return [];
  }
}

const sum = (vs: MetricValue[], pick: (labels: MetricValue["labels"]) => boolean) =>
  vs.filter((v) => pick(v.labels)).reduce((n, v) => n + v.value, 0);

let flushBounds: number[] = [];

export async function takeSample(now: number): Promise<Sample> {
  const [records, written, flush, pending] = await Promise.all([
    values("telemetry_ingest_records_total"),
    values("telemetry_writer_readings_total"),
    values("telemetry_writer_flush_seconds"),
    values("telemetry_consumer_pending"),
  ]);
  const buckets = flush.filter((v) => "le" in v.labels);
  flushBounds = buckets.map((v) => Number(v.labels.le)).filter(Number.isFinite);
  const consumer = (name: string) => pending.find((v) => v.labels.consumer === name)?.value ?? null;
  return {
    t: now,
    accepted: sum(records, (l) => l.outcome === "accepted" || l.outcome === "duplicate"),
    rejected: sum(records, (l) => l.outcome === "rejected"),
    written: sum(written, (l) => l.result === "inserted"),
    flushCount: flush.find((v) => (v as { metricName?: string }).metricName?.endsWith("_count"))?.value ?? 0,
    flushSum: flush.find((v) => (v as { metricName?: string }).metricName?.endsWith("_sum"))?.value ?? 0,
    flushBuckets: buckets.map((v) => v.value),
    writerPending: consumer("writer"),
    evaluatorPending: consumer("evaluator"),
  };
}

class Sampler {
  private readonly ring = new SampleRing(HISTORY);
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastWanted = 0;
  private busy = false;

  /** The series so far; starts sampling when it is not running. */
  async series(now = Date.now()): Promise<{ interval_ms: number; points: Point[] }> {
    this.lastWanted = now;
    if (!this.timer) {
      this.ring.clear();
      this.ring.push(await takeSample(now));
      this.timer = setInterval(() => void this.tick(), SAMPLE_INTERVAL_MS);
      this.timer.unref?.();
    }
    return { interval_ms: SAMPLE_INTERVAL_MS, points: toSeries(this.ring.all, flushBounds) };
  }

  private async tick(): Promise<void> {
    if (Date.now() - this.lastWanted > IDLE_MS) {
      clearInterval(this.timer!);
      this.timer = null;
      return;
    }
    if (this.busy) return; // a slow scrape (broker away) skips a beat instead of piling up
    this.busy = true;
    try {
      this.ring.push(await takeSample(Date.now()));
    } finally {
      this.busy = false;
    }
  }
}

export const sampler = new Sampler();
