/** A fixed key -> tenant resolver for tests that mount routes without a key store. */
import type { KeyResolver, TenantLimits } from "../../src/core/tenant.ts";

const limits: TenantLimits = {
  maxDevices: 10_000,
  ratePerSecond: 1e6,
  burst: 1e6,
  deviceRatePerSecond: 1e6,
  deviceBurst: 1e6,
  maxRecordsPerRequest: 10_000,
};

export function fixedKeys(keys: Record<string, string>): KeyResolver {
  return async (key) => {
    const id = keys[key];
    return id
      ? {
          status: "ok",
          keyId: key,
          kind: "tenant",
          device: null,
          tenant: { id, status: "active", suspendedReason: null, devicePolicy: "auto", limits },
        }
      : { status: "unknown" };
  };
}
