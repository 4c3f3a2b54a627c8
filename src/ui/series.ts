/**
 * The dashboard's server charts: cumulative counter samples -> rates and latencies per interval.
 * Pure: no I/O, no clock.
 */

/** One reading of this process's metrics at time t (counters are cumulative since start). */
export interface Sample {
  t: number;
  accepted: number;
  rejected: number;
  written: number;
  flushCount: number;
  flushSum: number;
  /** Cumulative bucket counts of the flush histogram, in the order of `flushBounds`. */
  flushBuckets: number[];
  writerPending: number | null;
  evaluatorPending: number | null;
}

export interface Point {
  t: number;
  /** Records per second accepted (accepted + duplicate) by ingest in this process. */
  ingest_rate: number;
  rejected_rate: number;
  /** Rows per second inserted by the writer in this process. */
  written_rate: number;
  /** Messages waiting for the durable consumers (server-wide, from JetStream). */
  writer_lag: number | null;
  evaluator_lag: number | null;
  /** Writer transactions in the interval: mean and 95th percentile (upper bucket bound), ms; null without flushes. */
  flush_mean_ms: number | null;
  flush_p95_ms: number | null;
}

const rate = (a: number, b: number, seconds: number) => (seconds > 0 ? Math.max(0, b - a) / seconds : 0);

/** The bucket bound (seconds) below which q of the interval's observations fall; +Inf -> the last finite bound. */
export function quantileFromBuckets(bounds: number[], before: number[], after: number[], q: number): number | null {
  const deltas = after.map((n, i) => Math.max(0, n - (before[i] ?? 0)));
  const total = deltas.at(-1) ?? 0;
  if (total <= 0) return null;
  const wanted = q * total;
  for (let i = 0; i < deltas.length; i++) if (deltas[i]! >= wanted) return bounds[i] ?? bounds.at(-1) ?? null;
  return bounds.at(-1) ?? null;
}

/** Consecutive samples -> one point per interval (n samples give n - 1 points). A counter reset (restart) gives 0, not a negative rate. */
export function toSeries(samples: readonly Sample[], flushBounds: number[]): Point[] {
  const points: Point[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const seconds = (b.t - a.t) / 1000;
    const flushes = b.flushCount - a.flushCount;
    const p95 = flushes > 0 ? quantileFromBuckets(flushBounds, a.flushBuckets, b.flushBuckets, 0.95) : null;
    points.push({
      t: b.t,
      ingest_rate: rate(a.accepted, b.accepted, seconds),
      rejected_rate: rate(a.rejected, b.rejected, seconds),
      written_rate: rate(a.written, b.written, seconds),
      writer_lag: b.writerPending,
      evaluator_lag: b.evaluatorPending,
      flush_mean_ms: flushes > 0 ? ((b.flushSum - a.flushSum) / flushes) * 1000 : null,
      flush_p95_ms: p95 === null ? null : p95 * 1000,
    });
  }
  return points;
}

/** A bounded ring of samples, oldest dropped first. */
export class SampleRing {
  private readonly items: Sample[] = [];
  constructor(private readonly capacity: number) {}
  push(s: Sample): void {
    this.items.push(s);
    if (this.items.length > this.capacity) this.items.shift();
  }
  get all(): readonly Sample[] {
    return this.items;
  }
  clear(): void {
    this.items.length = 0;
  }
}
