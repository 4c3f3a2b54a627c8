/**
 * The tenant checks HTTP makes, for MQTT messages, with the same code and the same state: the
 * tenant's status (a message that arrives for a suspended tenant is refused), its device policy
 * (tenants/devices: `unknown_device`, `device_limit`) and the rate limits (tenants/limits, the
 * buckets HTTP uses). What differs is what happens to a message that cannot go on:
 *
 * - refused by the policy: there is no response to carry the error, so the bridge quarantines the
 *   message with the reason (`unknown_device: ...`), as it does with invalid records;
 * - over a rate limit: nothing is refused. The message waits in the MQTT stream (nak with the
 *   delay the bucket gives) and comes back when the tenant and the device have room again;
 * - tenant settings or device list unreachable: it comes back in 5 s.
 */
import type { DeviceRegistry } from "../tenants/devices.ts";
import type { RateLimiter } from "../tenants/limits.ts";
import type { TenantLookup, TenantLookupResult } from "../tenants/lookup.ts";
import type { TenantSettings } from "../core/tenant.ts";

export interface PolicyDeps {
  tenants: TenantLookup;
  devices: DeviceRegistry;
  limits: RateLimiter;
}

export interface Candidate {
  tenant: string;
  deviceId: string;
  /** Valid records in the message. */
  records: number;
}

export type Verdict = { pass: true } | { refused: string } | { retryMs: number; limit?: "tenant" | "device" };

const UNAVAILABLE_RETRY_MS = 5_000;

/** One verdict per candidate, in order. */
export async function judge(deps: PolicyDeps, candidates: readonly Candidate[]): Promise<Verdict[]> {
  const verdicts: Verdict[] = new Array(candidates.length);
  const tenantIds = [...new Set(candidates.map((c) => c.tenant))];
  const settings = new Map<string, TenantLookupResult>(
    await Promise.all(tenantIds.map(async (id) => [id, await deps.tenants.get(id)] as const)),
  );

  // Tenant status, then the device policy, one admission per tenant.
  const byTenant = new Map<TenantSettings, number[]>();
  candidates.forEach((c, i) => {
    const s = settings.get(c.tenant)!;
    if (s === "unavailable") verdicts[i] = { retryMs: UNAVAILABLE_RETRY_MS };
    else if (s === null) verdicts[i] = { refused: `unknown_tenant: no tenant ${c.tenant}` };
    else if (s.status !== "active")
      verdicts[i] = { refused: `tenant_suspended: tenant ${s.id} is suspended: ${s.suspendedReason ?? ""}` };
    else {
      const indexes = byTenant.get(s);
      if (indexes) indexes.push(i);
      else byTenant.set(s, [i]);
    }
  });
  const admitted: number[] = [];
  for (const [tenant, indexes] of byTenant) {
    const admission = await deps.devices.admit(
      tenant,
      indexes.map((i) => candidates[i]!.deviceId),
    );
    for (const i of indexes) {
      if ("unavailable" in admission) verdicts[i] = { retryMs: UNAVAILABLE_RETRY_MS };
      else {
        const refusal = admission.refused.get(candidates[i]!.deviceId);
        if (refusal) verdicts[i] = { refused: `${refusal.code}: ${refusal.message}` };
        else admitted.push(i);
      }
    }
  }

  // Rate limits, in arrival order.
  admitted.sort((a, b) => a - b);
  const grants = deps.limits.takeMessages(
    admitted.map((i) => ({
      tenant: settings.get(candidates[i]!.tenant) as TenantSettings,
      deviceId: candidates[i]!.deviceId,
      records: candidates[i]!.records,
    })),
  );
  admitted.forEach((i, k) => {
    const g = grants[k]!;
    verdicts[i] = g.ok ? { pass: true } : { retryMs: g.waitMs, limit: g.limit };
  });
  return verdicts;
}
