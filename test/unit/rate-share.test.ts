import { expect, test } from "bun:test";
import { computeShares, RESERVE, WHOLE, type Announcement } from "../../src/core/rate-share.ts";
import type { TenantLimits, TenantSettings } from "../../src/core/tenant.ts";
import { RateLimiter } from "../../src/tenants/limits.ts";
import { parseDemand } from "../../src/tenants/rate-share.ts";

const NOW = 1_000_000;
const STALE = 3_000;
const heard = (entries: Record<string, { age?: number; demand?: Record<string, number> }>) =>
  new Map<string, Announcement>(
    Object.entries(entries).map(([id, e]) => [
      id,
      { heardAt: NOW - (e.age ?? 0), demand: new Map(Object.entries(e.demand ?? {})) },
    ]),
  );

/** Every process's share of `tenant`, computed as each of them would. */
const sharesOf = (h: Map<string, Announcement>, tenant: string) =>
  [...h.keys()].map((id) => {
    const s = computeShares(id, h, NOW, STALE);
    return s.byTenant.get(tenant) ?? s.fallback;
  });
const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

test("alone, or its own announcement unheard (the bucket unreachable): the whole limit", () => {
  expect(computeShares("a", heard({ a: {} }), NOW, STALE)).toBe(WHOLE);
  expect(computeShares("a", heard({ b: {}, c: {} }), NOW, STALE)).toBe(WHOLE);
  expect(computeShares("a", heard({ a: { age: STALE + 1 }, b: {} }), NOW, STALE)).toBe(WHOLE);
});

test("no demand anywhere: equal shares; the shares of every tenant add up to 1 across the processes", () => {
  const h = heard({ a: {}, b: {}, c: {} });
  expect(sharesOf(h, "t")).toEqual([1 / 3, 1 / 3, 1 / 3]);
  const busy = heard({ a: { demand: { t: 900, u: 5 } }, b: { demand: { t: 100 } }, c: { demand: { u: 5 } } });
  expect(total(sharesOf(busy, "t"))).toBeCloseTo(1, 12);
  expect(total(sharesOf(busy, "u"))).toBeCloseTo(1, 12);
  expect(total(sharesOf(busy, "idle"))).toBeCloseTo(1, 12);
});

test("shares follow demand, with a reserve at every process; one busy process is not capped at 1/N", () => {
  const h = heard({ a: { demand: { t: 1000 } }, b: {}, c: {} });
  const [a, b, c] = sharesOf(h, "t");
  expect(a).toBeCloseTo(RESERVE / 3 + (1 - RESERVE), 12); // 0.933
  expect(b).toBeCloseTo(RESERVE / 3, 12);
  expect(c).toBe(b!);
  const split = sharesOf(heard({ a: { demand: { t: 300 } }, b: { demand: { t: 100 } } }), "t");
  expect(split[0]).toBeCloseTo(RESERVE / 2 + (1 - RESERVE) * 0.75, 12);
});

test("a process not heard within the stale bound no longer counts: the others split its share", () => {
  const h = heard({ a: { demand: { t: 10 } }, b: { demand: { t: 10 } }, c: { demand: { t: 10 }, age: STALE + 1 } });
  expect(sharesOf(h, "t").slice(0, 2)).toEqual([0.5, 0.5]);
  expect(computeShares("a", h, NOW, STALE).processes).toBe(2);
});

test("an announcement that is not one (not JSON, not an object, bad numbers) is ignored or cleaned", () => {
  expect(parseDemand("nope")).toBeNull();
  expect(parseDemand("[1,2]")).toBeNull();
  expect(parseDemand("null")).toBeNull();
  expect(parseDemand('{"t":5,"u":-1,"v":"x","w":1e999}')).toEqual(new Map([["t", 5]]));
});

const tenant = (limits: Partial<TenantLimits>): TenantSettings => ({
  id: "t",
  status: "active",
  suspendedReason: null,
  devicePolicy: "auto",
  limits: {
    maxDevices: 100,
    ratePerSecond: 10,
    burst: 10,
    deviceRatePerSecond: 1e6,
    deviceBurst: 1e6,
    maxRecordsPerRequest: 1_000,
    ...limits,
  },
});

test("the limiter applies its share of the tenant's rate and burst, and counts the records asked for", () => {
  let t = 1_000_000;
  const limiter = new RateLimiter(() => t);
  const settings = tenant({ ratePerSecond: 10, burst: 10 });
  limiter.takeDemand();
  limiter.setShares({ fallback: 0.5, byTenant: new Map([["t", 0.3]]), processes: 2 });
  expect(limiter.takeTenant(settings, 3)).toEqual({ ok: true }); // burst 3
  expect(limiter.takeTenant(settings, 1)).toEqual({ ok: false, retryAfterMs: 334 }); // 3 records/s
  t += 1_000;
  expect(limiter.takeTenant(settings, 3)).toEqual({ ok: true });
  expect(limiter.takeDemand()).toEqual(new Map([["t", 7]]));
  limiter.setShares(WHOLE);
  t += 10_000;
  expect(limiter.takeTenant(settings, 10)).toEqual({ ok: true }); // the whole burst again
});

test("without shares the limiter keeps no demand counts (a single process as before)", () => {
  const limiter = new RateLimiter();
  limiter.takeTenant(tenant({}), 3);
  expect(limiter.takeDemand()).toEqual(new Map());
});
