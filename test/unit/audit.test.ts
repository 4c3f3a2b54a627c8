import { expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import { auditRange } from "../../src/replay/audit.ts";

test("the audited range starts its window before the first election seen and ends now", () => {
  expect(auditRange([], 10_000, 60_000)).toBeNull();
  expect(auditRange([200_000, 150_000, 170_000], 300_000, 60_000)).toEqual({ from: 90_000, to: 300_000 });
});

test("TELEMETRY_FAILOVER_AUDIT: a duration, off, or a clear error", () => {
  expect(loadConfig({}, {}).failoverAudit).toBe(60_000);
  expect(loadConfig({}, { TELEMETRY_FAILOVER_AUDIT: "5m" }).failoverAudit).toBe(300_000);
  expect(loadConfig({}, { TELEMETRY_FAILOVER_AUDIT: "off" }).failoverAudit).toBe(0);
  expect(() => loadConfig({}, { TELEMETRY_FAILOVER_AUDIT: "soon" })).toThrow(/TELEMETRY_FAILOVER_AUDIT/);
});
