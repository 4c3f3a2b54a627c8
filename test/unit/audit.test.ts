import { expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import { auditStart } from "../../src/replay/audit.ts";

test("the audit starts its window before the first election seen", () => {
  expect(auditStart([], 60_000)).toBeNull();
  expect(auditStart([200_000, 150_000, 170_000], 60_000)).toBe(90_000);
});

test("TELEMETRY_FAILOVER_AUDIT: a duration, off, or a clear error", () => {
  expect(loadConfig({}, {}).failoverAudit).toBe(60_000);
  expect(loadConfig({}, { TELEMETRY_FAILOVER_AUDIT: "5m" }).failoverAudit).toBe(300_000);
  expect(loadConfig({}, { TELEMETRY_FAILOVER_AUDIT: "off" }).failoverAudit).toBe(0);
  expect(() => loadConfig({}, { TELEMETRY_FAILOVER_AUDIT: "soon" })).toThrow(/TELEMETRY_FAILOVER_AUDIT/);
});
