import { describe, expect, test } from "bun:test";
import { TokenBuckets } from "../../src/core/token-bucket.ts";

const clock = () => {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
};

describe("token buckets", () => {
  const limit = { ratePerSecond: 10, burst: 20 };

  test("a fresh bucket holds the burst, then refills at the rate", () => {
    const c = clock();
    const b = new TokenBuckets({ now: c.now });
    expect(b.take("k", 20, limit)).toEqual({ ok: true });
    expect(b.take("k", 1, limit)).toEqual({ ok: false, retryAfterMs: 100 });
    c.advance(100);
    expect(b.take("k", 1, limit)).toEqual({ ok: true });
    c.advance(10_000); // never more than the burst
    expect(b.take("k", 20, limit)).toEqual({ ok: true });
    expect(b.take("k", 1, limit).ok).toBe(false);
  });

  test("a request larger than the burst passes on a full bucket and leaves a debt to repay", () => {
    const c = clock();
    const b = new TokenBuckets({ now: c.now });
    expect(b.take("k", 50, limit)).toEqual({ ok: true }); // 20 - 50 = -30
    expect(b.take("k", 1, limit)).toEqual({ ok: false, retryAfterMs: 3_100 });
    c.advance(3_000);
    expect(b.take("k", 1, limit).ok).toBe(false);
    c.advance(100);
    expect(b.take("k", 1, limit)).toEqual({ ok: true });
    // The long-run rate holds: 50 records, then the next large request waits for a full refill.
    expect(b.take("k", 50, limit)).toEqual({ ok: false, retryAfterMs: 2_000 });
  });

  test("takeUpTo grants whole tokens only, and says when the next one is there", () => {
    const c = clock();
    const b = new TokenBuckets({ now: c.now });
    expect(b.takeUpTo("k", 25, limit)).toEqual({ granted: 20, retryAfterMs: 100 });
    c.advance(250);
    expect(b.takeUpTo("k", 5, limit)).toEqual({ granted: 2, retryAfterMs: 50 });
    expect(b.takeUpTo("k", 0, limit)).toEqual({ granted: 0, retryAfterMs: 0 });
  });

  test("refunds give tokens back, never beyond the burst", () => {
    const c = clock();
    const b = new TokenBuckets({ now: c.now });
    b.takeUpTo("k", 15, limit);
    b.refund("k", 100, limit);
    expect(b.takeUpTo("k", 100, limit).granted).toBe(20);
  });

  test("keys are independent", () => {
    const b = new TokenBuckets({ now: clock().now });
    expect(b.take("a", 20, limit).ok).toBe(true);
    expect(b.take("b", 20, limit).ok).toBe(true);
    expect(b.take("a", 1, limit).ok).toBe(false);
  });

  test("memory is bounded: refilled buckets go first, then the least recently used", () => {
    const c = clock();
    const b = new TokenBuckets({ now: c.now, maxEntries: 100 });
    for (let i = 0; i < 100; i++) b.take(`idle-${i}`, 1, limit);
    c.advance(1_000); // every idle bucket has refilled: the same as no bucket
    for (let i = 0; i < 50; i++) b.take(`busy-${i}`, 20, limit);
    expect(b.size).toBe(50);
    for (let i = 50; i < 200; i++) b.take(`busy-${i}`, 20, limit);
    expect(b.size).toBeLessThanOrEqual(100);
    // The most recent buckets are kept, still empty: no free tokens from eviction for them.
    expect(b.take("busy-199", 1, limit).ok).toBe(false);
  });

  test("fractional rates", () => {
    const c = clock();
    const b = new TokenBuckets({ now: c.now });
    const slow = { ratePerSecond: 0.5, burst: 1 };
    expect(b.take("k", 1, slow).ok).toBe(true);
    expect(b.take("k", 1, slow)).toEqual({ ok: false, retryAfterMs: 2_000 });
    c.advance(2_000);
    expect(b.take("k", 1, slow).ok).toBe(true);
  });

  test("waitMs: how long until the bucket holds n tokens, taking none", () => {
    const c = clock();
    const b = new TokenBuckets({ now: c.now });
    expect(b.waitMs("k", 5, limit)).toBe(0); // a fresh bucket is full
    expect(b.take("k", 20, limit).ok).toBe(true);
    expect(b.waitMs("k", 5, limit)).toBe(500);
    expect(b.waitMs("k", 5, limit)).toBe(500); // asking takes nothing
    expect(b.waitMs("k", 45, limit)).toBe(4_500); // more than the burst: the time for work queued ahead, then this
    c.advance(200);
    expect(b.waitMs("k", 5, limit)).toBe(300);
    expect(b.take("k", 30, limit).ok).toBe(false);
    c.advance(1_800); // full again: 20
    expect(b.take("k", 30, limit).ok).toBe(true); // debt: -10
    expect(b.waitMs("k", 1, limit)).toBe(1_100);
  });
});
