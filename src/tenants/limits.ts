/**
 * Record rate limits of one ingest process: a token bucket per tenant and one per (tenant,
 * device), both counting records. Limits come from the tenant's settings at each request, so a
 * change applies within the key cache's TTL.
 */
import { TokenBuckets, type Limit, type TakeResult } from "../core/token-bucket.ts";
import type { TenantSettings } from "./tenant.ts";

export interface DeviceGrant {
  granted: number;
  retryAfterMs: number;
}

export class RateLimiter {
  private readonly tenants: TokenBuckets;
  private readonly devices: TokenBuckets;

  constructor(now: () => number = Date.now) {
    this.tenants = new TokenBuckets({ now });
    this.devices = new TokenBuckets({ now, maxEntries: 200_000 });
  }

  /** How many records of each device may pass now (the first ones of the request). */
  takeDevices(tenant: TenantSettings, counts: ReadonlyMap<string, number>): Map<string, DeviceGrant> {
    const limit = deviceLimit(tenant);
    return new Map([...counts].map(([device, n]) => [device, this.devices.takeUpTo(`${tenant.id}/${device}`, n, limit)]));
  }

  /** Gives back device tokens of a request that was refused as a whole. */
  refundDevices(tenant: TenantSettings, grants: ReadonlyMap<string, DeviceGrant>): void {
    const limit = deviceLimit(tenant);
    for (const [device, g] of grants) if (g.granted > 0) this.devices.refund(`${tenant.id}/${device}`, g.granted, limit);
  }

  takeTenant(tenant: TenantSettings, records: number): TakeResult {
    return this.tenants.take(tenant.id, records, { ratePerSecond: tenant.limits.ratePerSecond, burst: tenant.limits.burst });
  }
}

function deviceLimit(tenant: TenantSettings): Limit {
  return { ratePerSecond: tenant.limits.deviceRatePerSecond, burst: tenant.limits.deviceBurst };
}
