/**
 * Shares of a tenant's rate limit among the live ingest processes (decision 0560). Pure: the
 * caller feeds what the processes announced (tenants/rate-share.ts reads and writes them in a
 * NATS KV bucket) and its own clock.
 *
 * Every process announces, every interval, its recent demand per tenant (records asked for per
 * second, refused ones included). A process's share of tenant T's limit is
 *
 *   share = RESERVE / N + (1 − RESERVE) × demand_self / Σ demand      (Σ demand > 0)
 *   share = 1 / N                                                     (nobody asked for T)
 *
 * over the N processes heard from within `staleMs`. All processes compute from the same
 * announced figures, so the shares add up to 1: the tenant's rate and burst are split, not
 * multiplied. The reserve keeps a little of the rate at every process, so one that receives T's
 * first request in a while accepts some at once, and its demand shows in the next announcement.
 */

/** Fraction of each tenant's limit kept evenly at every process whatever the demand. */
export const RESERVE = 0.1;

export interface Announcement {
  /** When this process last heard it (its own clock). */
  heardAt: number;
  /** Records per second asked for, per tenant (tenants without demand absent). */
  demand: ReadonlyMap<string, number>;
}

export interface Shares {
  /** Share of a tenant nobody asked for. */
  readonly fallback: number;
  /** Shares of the tenants some process asked for. */
  readonly byTenant: ReadonlyMap<string, number>;
  /** Processes counted (self included). */
  readonly processes: number;
}

/** Every share 1: this process alone (or nothing heard, not even its own announcement). */
export const WHOLE: Shares = { fallback: 1, byTenant: new Map(), processes: 1 };

/**
 * This process's shares from the announcements heard (its own among them, as announced, so
 * every process computes from the same figures). Its own announcement not heard within
 * `staleMs` (the bucket unreachable): WHOLE, the local limit, as with one process.
 */
export function computeShares(
  self: string,
  heard: ReadonlyMap<string, Announcement>,
  now: number,
  staleMs: number,
): Shares {
  const own = heard.get(self);
  if (!own || now - own.heardAt > staleMs) return WHOLE;
  const live: Announcement[] = [];
  for (const a of heard.values()) if (now - a.heardAt <= staleMs) live.push(a);
  const n = live.length;
  if (n === 1) return WHOLE;
  const total = new Map<string, number>();
  for (const a of live) for (const [tenant, d] of a.demand) if (d > 0) total.set(tenant, (total.get(tenant) ?? 0) + d);
  const byTenant = new Map<string, number>();
  for (const [tenant, sum] of total) {
    const mine = own.demand.get(tenant) ?? 0;
    byTenant.set(tenant, RESERVE / n + ((1 - RESERVE) * Math.max(0, mine)) / sum);
  }
  return { fallback: 1 / n, byTenant, processes: n };
}

/** Demand smoothed over intervals (half of the last one, half of the rest) so one quiet interval does not drop a share. */
export function smoothDemand(previous: number, recordsPerSecond: number): number {
  const next = (previous + recordsPerSecond) / 2;
  return next < 0.01 ? 0 : next;
}
