/**
 * Token buckets, in memory, keyed by string, with an injectable clock. Pure: no I/O, no timers.
 *
 * A bucket holds up to `burst` tokens and refills at `ratePerSecond`. `take` is for weighted
 * requests (a request of n records costs n): it passes when the bucket holds min(cost, burst)
 * tokens and then takes the whole cost, which may leave the bucket in debt. So a request larger
 * than the burst is never refused forever, and the long-run rate still holds: the debt is repaid
 * before anything else passes. `takeUpTo` grants what is there, whole tokens only, no debt.
 *
 * Memory is bounded: a bucket that has refilled to full is the same as no bucket, so those are
 * dropped when the map grows past `maxEntries`; if that is not enough the least recently used
 * go (a fresh bucket is full, so eviction can only ever be lenient).
 */
export interface Limit {
  ratePerSecond: number;
  burst: number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  at: number;
  /** The limit of its last use, to judge whether it has refilled when it comes to eviction. */
  limit: Limit;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(opts: { now?: () => number; maxEntries?: number } = {}) {
    this.now = opts.now ?? Date.now;
    this.maxEntries = opts.maxEntries ?? 100_000;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(key: string, cost: number, limit: Limit): TakeResult {
    const b = this.current(key, limit);
    const needed = Math.min(cost, limit.burst);
    if (b.tokens < needed) return { ok: false, retryAfterMs: waitMs(needed - b.tokens, limit) };
    b.tokens -= cost;
    return { ok: true };
  }

  /** Takes up to `wanted` whole tokens; `retryAfterMs` says when the next token after those is there. */
  takeUpTo(key: string, wanted: number, limit: Limit): { granted: number; retryAfterMs: number } {
    const b = this.current(key, limit);
    const granted = Math.max(0, Math.min(wanted, Math.floor(b.tokens)));
    b.tokens -= granted;
    return { granted, retryAfterMs: granted < wanted ? waitMs(1 - b.tokens, limit) : 0 };
  }

  /**
   * How long until the bucket holds `tokens` (0: it does now), taking nothing. `tokens` may be
   * more than the burst: that is the time for work queued ahead to pass first (each part taking
   * its share, with debt) and then this; a bucket never holds more than the burst at once.
   */
  waitMs(key: string, tokens: number, limit: Limit): number {
    const b = this.current(key, limit);
    return tokens <= b.tokens ? 0 : waitMs(tokens - b.tokens, limit);
  }

  /** Gives back tokens taken for work that was not done after all. */
  refund(key: string, tokens: number, limit: Limit): void {
    const b = this.buckets.get(key);
    if (b) b.tokens = Math.min(limit.burst, b.tokens + tokens);
  }

  /** The bucket refilled up to now, moved to the most recently used end of the map. */
  private current(key: string, limit: Limit): Bucket {
    const now = this.now();
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key);
      b.tokens = Math.min(limit.burst, b.tokens + ((now - b.at) / 1000) * limit.ratePerSecond);
      b.at = now;
      b.limit = limit;
    } else {
      if (this.buckets.size >= this.maxEntries) this.evict(now);
      b = { tokens: limit.burst, at: now, limit };
    }
    this.buckets.set(key, b);
    return b;
  }

  /** Drops the buckets that have refilled, then the least recently used down to 90 %. */
  private evict(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * b.limit.ratePerSecond >= b.limit.burst) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.maxEntries * 0.9) break;
      this.buckets.delete(key);
    }
  }
}

function waitMs(tokens: number, limit: Limit): number {
  return Math.ceil((tokens / limit.ratePerSecond) * 1000);
}
