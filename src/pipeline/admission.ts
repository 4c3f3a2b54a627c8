/**
 * The admission step every source shares (docs/decisions/0420-one-admission-path.md). A source
 * decodes its wire format into candidate records for a tenant (HTTP: the one its key
 * authenticated; MQTT: the topic's, whose status is checked here) and maps what comes back into
 * its protocol. This module does the rest, in order: validation and normalization with event ids
 * (core/record) → tenant status → device policy (tenants/devices) → rate limits (tenants/limits)
 * → plan → publish with ack (core/plan, nats/publish) → one outcome per record or message. It
 * knows neither HTTP nor MQTT: a unit refused as a whole gets a typed Refusal or Verdict, which
 * ingest/admit.ts maps to an HttpError and mqtt/bridge.ts to the quarantine or a delayed
 * redelivery. In a shared folder because two roles use it and roles do not import each other.
 *
 * Two granularities, because the sources' contracts differ:
 * - a request (admitRecords): a result per record; a device the policy refuses, or over its
 *   rate limit, loses its records (the first ones within its tokens pass), the tenant's bucket
 *   is all or nothing, and the request is refused when no record is left;
 * - a batch of messages (judgeMessages, then publishReadings): one verdict per message, all or
 *   nothing: refused with the reason, wait for the bucket's delay, or pass. Their records were
 *   validated by the MQTT decoder (core/mqtt, through the same core/record normalization).
 */
import { planMessages, type Plan } from "../core/plan.ts";
import type { Reading } from "../core/record.ts";
import { normalizeRecord } from "../core/record.ts";
import type { TenantSettings } from "../core/tenant.ts";
import { metrics } from "../lib/metrics.ts";
import type { Broker } from "../nats/connection.ts";
import { BrokerUnavailable, publishAll, type PublishOutcome } from "../nats/publish.ts";
import type { DeviceRegistry } from "../tenants/devices.ts";
import type { RateLimiter } from "../tenants/limits.ts";
import type { TenantLookup, TenantLookupResult } from "../tenants/lookup.ts";
import {
  type Admission,
  type Candidate,
  fillOutcomes,
  type MessageCandidate,
  type RecordResult,
  type Refusal,
  type Reject,
  reasonOf,
  Refused,
  type Valid,
  type Verdict,
} from "./admission-results.ts";

export type * from "./admission-results.ts";

export const MAX_MESSAGE_BYTES = 256 * 1024;
/** Tenant settings or device list unreachable: try again after this. */
const UNAVAILABLE_RETRY_MS = 5_000;

export interface PublishStepOptions {
  stream: string;
  dlqStream: string;
  recordsPerMessage: number;
  publishTimeoutMs: number;
}

export interface AdmissionOptions extends PublishStepOptions {
  maxFutureMs: number;
}

export interface AdmissionDeps {
  broker: Broker;
  devices: DeviceRegistry;
  limits: RateLimiter;
  options: AdmissionOptions;
}

/** Admits the candidate records of one request: its results, or why it is refused as a whole. */
export async function admitRecords(
  deps: AdmissionDeps,
  tenant: TenantSettings,
  items: readonly Candidate[],
  receivedAt: number,
): Promise<Admission | { refused: Refusal }> {
  const opts = deps.options;
  const results: RecordResult[] = new Array(items.length);
  const reject: Reject = (index, errors, reason) => {
    results[index] = { index, status: "rejected", errors };
    metrics.records.inc({ outcome: "rejected", reason }, 1);
  };
  let valid: Valid[] = [];
  for (const item of items) {
    if ("error" in item) {
      reject(item.index, [item.error], reasonOf([item.error]));
      continue;
    }
    const r = normalizeRecord(item.value, {
      tenant: tenant.id,
      nowMs: receivedAt,
      maxFutureMs: opts.maxFutureMs,
      identity: item.identity,
    });
    if (r.ok) valid.push({ index: item.index, reading: r.reading });
    else reject(item.index, r.errors, reasonOf(r.errors));
  }
  if (valid.length === 0) {
    return { status: 422, body: { accepted: 0, duplicate: 0, dead_lettered: 0, rejected: items.length, results } };
  }
  try {
    valid = await applyDevicePolicy(deps.devices, tenant, valid, reject);
    valid = applyRateLimits(deps.limits, tenant, valid, reject);
  } catch (err) {
    if (err instanceof Refused) return { refused: err.refusal };
    throw err;
  }
  const published = await publishReadings(deps.broker, opts, valid, receivedAt);
  if ("refused" in published) {
    metrics.records.inc({ outcome: "unavailable", reason: "" }, valid.length);
    return published;
  }
  fillOutcomes(results, valid, published.plan, published.outcomes);

  const counts = { accepted: 0, duplicate: 0, dead_lettered: 0, rejected: 0 };
  for (const r of results) counts[r.status]++;
  if (counts.accepted > 0) metrics.records.inc({ outcome: "accepted", reason: "" }, counts.accepted);
  if (counts.duplicate > 0) metrics.records.inc({ outcome: "duplicate", reason: "" }, counts.duplicate);
  if (counts.dead_lettered > 0) metrics.records.inc({ outcome: "dead_lettered", reason: "" }, counts.dead_lettered);
  return { status: 202, body: { ...counts, results } };
}

/**
 * Plan the per-device broker messages and publish them with their message ids, each waiting for
 * its PubAck: one outcome per planned message. A broker that cannot take them is a refusal
 * (nothing may be assumed stored); any other failure throws.
 */
export async function publishReadings(
  broker: Broker,
  o: PublishStepOptions,
  items: ReadonlyArray<{ index: number; reading: Reading }>,
  receivedAt: number,
): Promise<{ plan: Plan; outcomes: PublishOutcome[] } | { refused: Refusal & { code: "broker_unavailable" } }> {
  const plan = planMessages(items, { maxRecords: o.recordsPerMessage, maxBytes: MAX_MESSAGE_BYTES, receivedAt });
  try {
    const outcomes = await publishAll(broker, plan.messages, {
      stream: o.stream,
      dlqStream: o.dlqStream,
      timeoutMs: o.publishTimeoutMs,
    });
    return { plan, outcomes };
  } catch (err) {
    if (!(err instanceof BrokerUnavailable)) throw err;
    return {
      refused: {
        code: "broker_unavailable",
        message:
          "the message broker is unavailable; nothing from this request may be assumed stored, retry the same records later",
        retryAfterMs: 1_000,
        detail: err.message,
        records: items.length,
      },
    };
  }
}

/** Drops the records of devices the tenant's policy refuses; refused when that leaves none. */
async function applyDevicePolicy(
  devices: DeviceRegistry,
  tenant: TenantSettings,
  valid: Valid[],
  reject: Reject,
): Promise<Valid[]> {
  const admission = await devices.admit(
    tenant,
    valid.map((v) => v.reading.deviceId),
  );
  if ("unavailable" in admission)
    throw new Refused({
      code: "devices_unavailable",
      message: "the device registry is unreachable; retry later",
      retryAfterMs: UNAVAILABLE_RETRY_MS,
    });
  if (admission.refused.size === 0) return valid;
  const kept = valid.filter((v) => {
    const refusal = admission.refused.get(v.reading.deviceId);
    if (refusal) reject(v.index, [{ path: "device_id", ...refusal }], refusal.code);
    return !refusal;
  });
  if (kept.length > 0) return kept;
  const { code } = admission.refused.values().next().value!;
  throw new Refused({
    code,
    message:
      code === "device_limit"
        ? `tenant device limit (${tenant.limits.maxDevices}) reached: no record of this request is from a known device`
        : "no record of this request is from a registered device; register devices first (POST /api/v1/devices)",
  });
}

/**
 * Device buckets first: a device's records beyond its tokens are rejected one by one (the first
 * ones pass). Then the tenant's bucket, charged for what is left, refuses all or nothing; device
 * tokens taken for a refused request are given back. Refused when nothing passes.
 */
function applyRateLimits(limits: RateLimiter, tenant: TenantSettings, valid: Valid[], reject: Reject): Valid[] {
  const wanted = new Map<string, number>();
  for (const v of valid) wanted.set(v.reading.deviceId, (wanted.get(v.reading.deviceId) ?? 0) + 1);
  const grants = limits.takeDevices(tenant, wanted);
  const passed = new Map<string, number>();
  let soonestMs = Infinity;
  const kept = valid.filter((v) => {
    const device = v.reading.deviceId;
    const grant = grants.get(device)!;
    const n = passed.get(device) ?? 0;
    if (n < grant.granted) {
      passed.set(device, n + 1);
      return true;
    }
    soonestMs = Math.min(soonestMs, grant.retryAfterMs);
    const { deviceRatePerSecond: rate, deviceBurst: burst } = tenant.limits;
    const message = `device rate limit (${rate} records/s, burst ${burst}) reached; retry in ${Math.ceil(grant.retryAfterMs / 1000)} s`;
    reject(v.index, [{ path: "device_id", code: "rate_limited", message }], "rate_limited");
    return false;
  });
  if (kept.length === 0)
    throw new Refused({
      code: "rate_limited",
      message: "every record is over its device's rate limit",
      retryAfterMs: soonestMs,
    });

  const taken = limits.takeTenant(tenant, kept.length);
  if (taken.ok) return kept;
  limits.refundDevices(tenant, grants);
  metrics.records.inc({ outcome: "rejected", reason: "rate_limited" }, kept.length);
  const { ratePerSecond: rate, burst } = tenant.limits;
  throw new Refused({
    code: "rate_limited",
    message: `tenant ${tenant.id} is over its rate limit (${rate} records/s, burst ${burst})`,
    retryAfterMs: taken.retryAfterMs,
  });
}

// ---- Messages (MQTT): one verdict per message ----

export interface MessageDeps {
  tenants: TenantLookup;
  devices: DeviceRegistry;
  limits: RateLimiter;
}

/**
 * One verdict per message, in order: the tenant's status (unknown or suspended: refused), its
 * device policy (refused with the reason), the rate limits in arrival order (wait the bucket's
 * delay); the tenant's settings or device list unreachable: wait 5 s.
 */
export async function judgeMessages(deps: MessageDeps, candidates: readonly MessageCandidate[]): Promise<Verdict[]> {
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
