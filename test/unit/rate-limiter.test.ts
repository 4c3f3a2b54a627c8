import { expect, test } from "bun:test";
import { RateLimiter } from "../../src/tenants/limits.ts";
import type { TenantLimits, TenantSettings } from "../../src/core/tenant.ts";

const clock = () => {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
};

const tenant = (id: string, limits: Partial<TenantLimits>): TenantSettings => ({
  id,
  status: "active",
  suspendedReason: null,
  devicePolicy: "auto",
  limits: {
    maxDevices: 100,
    ratePerSecond: 1e6,
    burst: 1e6,
    deviceRatePerSecond: 1e6,
    deviceBurst: 1e6,
    maxRecordsPerRequest: 1_000,
    ...limits,
  },
});

test("MQTT messages pass whole while the tenant's bucket has room; the rest wait, spread out at the rate", () => {
  const c = clock();
  const limiter = new RateLimiter(c.now);
  const t = tenant("t", { ratePerSecond: 2, burst: 2 });
  const msgs = Array.from({ length: 5 }, (_, i) => ({ tenant: t, deviceId: `d${i % 2}`, records: 1 }));
  expect(limiter.takeMessages(msgs)).toEqual([
    { ok: true },
    { ok: true },
    { ok: false, waitMs: 500, limit: "tenant" },
    { ok: false, waitMs: 1_000, limit: "tenant" },
    { ok: false, waitMs: 1_500, limit: "tenant" },
  ]);
  c.advance(500);
  expect(limiter.takeMessages([msgs[2]!, msgs[3]!])).toEqual([
    { ok: true },
    { ok: false, waitMs: 500, limit: "tenant" },
  ]);
});

test("a device over its limit waits; other devices of the tenant go on, and the device's later messages wait behind it", () => {
  const c = clock();
  const limiter = new RateLimiter(c.now);
  const t = tenant("t", { deviceRatePerSecond: 1, deviceBurst: 3 });
  const grants = limiter.takeMessages([
    { tenant: t, deviceId: "chatty", records: 3 },
    { tenant: t, deviceId: "chatty", records: 2 },
    { tenant: t, deviceId: "quiet", records: 3 },
    { tenant: t, deviceId: "chatty", records: 1 },
  ]);
  expect(grants).toEqual([
    { ok: true },
    { ok: false, waitMs: 2_000, limit: "device" },
    { ok: true },
    { ok: false, waitMs: 3_000, limit: "device" },
  ]);
});

test("a message larger than the burst passes on a full bucket and leaves a debt; the tenant's refusal gives the device tokens back", () => {
  const c = clock();
  const limiter = new RateLimiter(c.now);
  const t = tenant("t", { ratePerSecond: 10, burst: 10, deviceRatePerSecond: 5, deviceBurst: 5 });
  expect(limiter.takeMessages([{ tenant: t, deviceId: "a", records: 8 }])).toEqual([{ ok: true }]); // device: 5 - 8 = -3, tenant: 2
  c.advance(1_000); // device 2, tenant 10
  expect(limiter.takeMessages([{ tenant: t, deviceId: "a", records: 2 }])).toEqual([{ ok: true }]);
  expect(limiter.takeMessages([{ tenant: t, deviceId: "b", records: 9 }])).toEqual([
    { ok: false, waitMs: 100, limit: "tenant" },
  ]); // tenant 8 < 9
  // b's device bucket got its tokens back: after 100 ms b passes in full.
  c.advance(100);
  expect(limiter.takeMessages([{ tenant: t, deviceId: "b", records: 9 }])).toEqual([{ ok: true }]);
});

test("HTTP and MQTT share the buckets", () => {
  const c = clock();
  const limiter = new RateLimiter(c.now);
  const t = tenant("t", { ratePerSecond: 1, burst: 5 });
  expect(limiter.takeTenant(t, 5).ok).toBe(true);
  expect(limiter.takeMessages([{ tenant: t, deviceId: "a", records: 1 }])).toEqual([
    { ok: false, waitMs: 1_000, limit: "tenant" },
  ]);
});
