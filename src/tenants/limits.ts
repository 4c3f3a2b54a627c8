/**
 * Record rate limits of one ingest process: a token bucket per tenant and one per (tenant,
 * device), both counting records. Limits come from the tenant's settings at each request, so a
 * change applies within the key cache's TTL. HTTP and the MQTT bridge share one limiter, so a
 * tenant's records count against the same buckets whichever way they come.
 *
 * With several ingest processes (tenants/rate-share.ts, decision 0560), a tenant's bucket gets
 * this process's share of the tenant's rate and burst: `setShares` swaps the shares in (once an
 * interval, off the request path) and `takeDemand` hands over the records asked for since. On the
 * request path that is a map lookup and a counter, no await and no allocation beyond today's.
 */
import { WHOLE, type Shares } from "../core/rate-share.ts";
import { TokenBuckets, type Limit, type TakeResult } from "../core/token-bucket.ts";
import type { TenantSettings } from "../core/tenant.ts";

export interface DeviceGrant {
  granted: number;
  retryAfterMs: number;
}

/** One MQTT message: all its records pass together, or it waits `waitMs` (over its tenant's or its device's limit). */
export type MessageGrant = { ok: true } | { ok: false; waitMs: number; limit: "tenant" | "device" };

interface SharedLimit {
  rate: number;
  burst: number;
  share: number;
  limit: Limit;
}

export class RateLimiter {
  private readonly tenants: TokenBuckets;
  private readonly devices: TokenBuckets;
  private shares: Shares = WHOLE;
  /** This process's part of each tenant's limit, built once per share and tenant setting. */
  private readonly sharedLimits = new Map<string, SharedLimit>();
  /** Records asked for per tenant since the last `takeDemand` (only while shares are kept). */
  private asked: Map<string, number> | null = null;

  constructor(now: () => number = Date.now) {
    this.tenants = new TokenBuckets({ now });
    this.devices = new TokenBuckets({ now, maxEntries: 200_000 });
  }

  /** From now on each tenant's bucket holds this process's share of the tenant's limit. */
  setShares(shares: Shares): void {
    this.shares = shares;
    this.sharedLimits.clear();
  }

  /** Starts counting demand (the first call) and returns what was asked for per tenant since the last call. */
  takeDemand(): Map<string, number> {
    const asked = this.asked ?? new Map<string, number>();
    this.asked = new Map();
    return asked;
  }

  private count(tenantId: string, records: number): void {
    const asked = this.asked;
    if (asked) asked.set(tenantId, (asked.get(tenantId) ?? 0) + records);
  }

  /** The tenant's limit, or this process's share of it. */
  private tenantLimit(tenant: TenantSettings): Limit {
    const shares = this.shares;
    if (shares === WHOLE) return tenantLimit(tenant);
    const share = shares.byTenant.get(tenant.id) ?? shares.fallback;
    const { ratePerSecond: rate, burst } = tenant.limits;
    const cached = this.sharedLimits.get(tenant.id);
    if (cached && cached.share === share && cached.rate === rate && cached.burst === burst) return cached.limit;
    const limit = { ratePerSecond: rate * share, burst: burst * share };
    this.sharedLimits.set(tenant.id, { rate, burst, share, limit });
    return limit;
  }

  /** How many records of each device may pass now (the first ones of the request). */
  takeDevices(tenant: TenantSettings, counts: ReadonlyMap<string, number>): Map<string, DeviceGrant> {
    const limit = deviceLimit(tenant);
    return new Map(
      [...counts].map(([device, n]) => [device, this.devices.takeUpTo(`${tenant.id}/${device}`, n, limit)]),
    );
  }

  /** Gives back device tokens of a request that was refused as a whole. */
  refundDevices(tenant: TenantSettings, grants: ReadonlyMap<string, DeviceGrant>): void {
    const limit = deviceLimit(tenant);
    for (const [device, g] of grants)
      if (g.granted > 0) this.devices.refund(`${tenant.id}/${device}`, g.granted, limit);
  }

  takeTenant(tenant: TenantSettings, records: number): TakeResult {
    this.count(tenant.id, records);
    return this.tenants.take(tenant.id, records, this.tenantLimit(tenant));
  }

  /**
   * For the MQTT bridge, which cannot refuse (nothing answers a device): messages in arrival
   * order, each passing whole when its device's bucket and then its tenant's bucket hold
   * min(records, burst) tokens (taking all its records, with debt, like `take`), or waiting.
   * Once a message of a device waits, later ones of the device wait behind it, and once one waits
   * for its tenant's bucket, so do later ones of the tenant (order kept within the batch), and each waiting message's `waitMs` is the time
   * until the bucket holds what the waiting messages ahead of it need plus its own share: they
   * come back spread out at the limit's rate, not all at once.
   */
  takeMessages(messages: ReadonlyArray<{ tenant: TenantSettings; deviceId: string; records: number }>): MessageGrant[] {
    const aheadTenant = new Map<string, number>();
    const aheadDevice = new Map<string, number>();
    return messages.map(({ tenant, deviceId, records }) => {
      this.count(tenant.id, records);
      const tLimit = this.tenantLimit(tenant);
      const dLimit = deviceLimit(tenant);
      const dKey = `${tenant.id}/${deviceId}`;
      const tAhead = aheadTenant.get(tenant.id) ?? 0;
      const dAhead = aheadDevice.get(dKey) ?? 0;
      if (tAhead === 0 && dAhead === 0 && this.devices.take(dKey, records, dLimit).ok) {
        if (this.tenants.take(tenant.id, records, tLimit).ok) return { ok: true };
        this.devices.refund(dKey, records, dLimit);
      }
      const dWait = this.devices.waitMs(dKey, dAhead + Math.min(records, dLimit.burst), dLimit);
      const tWait = this.tenants.waitMs(tenant.id, tAhead + Math.min(records, tLimit.burst), tLimit);
      // Later messages of the device wait behind this one; those of other devices only when it waits for the tenant.
      aheadDevice.set(dKey, dAhead + records);
      if (tWait > 0) aheadTenant.set(tenant.id, tAhead + records);
      // Never 0: a message that waits comes back after at least a moment.
      return { ok: false, waitMs: Math.max(1, dWait, tWait), limit: dWait > tWait ? "device" : "tenant" };
    });
  }
}

function tenantLimit(tenant: TenantSettings): Limit {
  return { ratePerSecond: tenant.limits.ratePerSecond, burst: tenant.limits.burst };
}

function deviceLimit(tenant: TenantSettings): Limit {
  return { ratePerSecond: tenant.limits.deviceRatePerSecond, burst: tenant.limits.deviceBurst };
}
