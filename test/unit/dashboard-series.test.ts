import { expect, test } from "bun:test";
import { requestLevel } from "../../src/http/app.ts";
import { SampleRing, quantileFromBuckets, toSeries, type Sample } from "../../src/ui/series.ts";

const bounds = [0.001, 0.01, 0.1, 1];
const sample = (t: number, o: Partial<Sample> = {}): Sample => ({
  t,
  accepted: 0,
  rejected: 0,
  written: 0,
  flushCount: 0,
  flushSum: 0,
  flushBuckets: [0, 0, 0, 0, 0],
  writerPending: null,
  evaluatorPending: null,
  ...o,
});

test("counter samples become per-second rates per interval", () => {
  const points = toSeries(
    [
      sample(0, { accepted: 100, rejected: 5, written: 50 }),
      sample(2000, { accepted: 300, rejected: 9, written: 250, writerPending: 7 }),
    ],
    bounds,
  );
  expect(points).toEqual([
    {
      t: 2000,
      ingest_rate: 100,
      rejected_rate: 2,
      written_rate: 100,
      writer_lag: 7,
      evaluator_lag: null,
      flush_mean_ms: null,
      flush_p95_ms: null,
    },
  ]);
});

test("a counter reset (restart) gives 0, not a negative rate", () => {
  expect(toSeries([sample(0, { accepted: 500 }), sample(1000, { accepted: 20 })], bounds)[0]!.ingest_rate).toBe(0);
});

test("flush latency: mean of the interval and p95 as the bucket bound", () => {
  // 20 flushes in the interval: 19 under 10 ms, 1 under 100 ms; sum 0.2 s -> mean 10 ms
  const a = sample(0, { flushCount: 5, flushSum: 1, flushBuckets: [1, 5, 5, 5, 5] });
  const b = sample(2000, { flushCount: 25, flushSum: 1.2, flushBuckets: [1, 24, 25, 25, 25] });
  const [p] = toSeries([a, b], bounds);
  expect(p!.flush_mean_ms).toBeCloseTo(10, 6);
  expect(p!.flush_p95_ms).toBeCloseTo(10, 6);
  expect(quantileFromBuckets(bounds, a.flushBuckets, b.flushBuckets, 1)).toBe(0.1);
  expect(quantileFromBuckets(bounds, [0, 0, 0, 0, 0], [0, 0, 0, 0, 3], 0.5)).toBe(1); // only +Inf: the last finite bound
  expect(quantileFromBuckets(bounds, [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], 0.95)).toBeNull();
});

test("the ring keeps the newest samples", () => {
  const ring = new SampleRing(3);
  for (let t = 0; t < 5; t++) ring.push(sample(t));
  expect(ring.all.map((s) => s.t)).toEqual([2, 3, 4]);
});

test("request log levels: probes at debug, server errors at warn", () => {
  expect(requestLevel("/api/v1/telemetry", 202)).toBe("info");
  expect(requestLevel("/api/v1/telemetry", 429)).toBe("info");
  expect(requestLevel("/health", 200)).toBe("debug");
  expect(requestLevel("/metrics", 200)).toBe("debug");
  expect(requestLevel("/api/v1/telemetry", 503)).toBe("warn");
});
