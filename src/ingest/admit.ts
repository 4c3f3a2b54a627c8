/**
 * The admission step of the HTTP sources: candidate records (decoded by a source from its wire
 * format, for the tenant its key authenticated) through validation and normalization with event
 * ids (core/record), the tenant's device policy, the rate limits, then the shared plan → publish
 * with ack (pipeline/admit), to one result per record in request order. Records refused by a
 * later check are reported per record; when none is left the request is refused as a whole with
 * the status of the last check that refused them (422 in the result, HttpError 403
 * unknown_device/device_limit, 429 rate_limited, 503 devices_unavailable/broker_unavailable).
 */
import type { FieldError, Reading } from "../core/record.ts";
import { normalizeRecord } from "../core/record.ts";
import type { TenantSettings } from "../core/tenant.ts";
import { HttpError } from "../http/errors.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import type { Broker } from "../nats/connection.ts";
import { BrokerUnavailable, type PublishOutcome } from "../nats/publish.ts";
import { planAndPublish } from "../pipeline/admit.ts";
import type { Plan } from "../core/plan.ts";
import type { DeviceRegistry } from "../tenants/devices.ts";
import type { RateLimiter } from "../tenants/limits.ts";
import type { BodyItem } from "./parse.ts";

const log = logger("ingest");

export interface AdmitDeps {
  broker: Broker;
  devices: DeviceRegistry;
  limits: RateLimiter;
  options: AdmitOptions;
}

export interface AdmitOptions {
  stream: string;
  dlqStream: string;
  recordsPerMessage: number;
  maxFutureMs: number;
  publishTimeoutMs: number;
}

/** A field error, or a policy refusal with its code (unknown_device, device_limit, rate_limited). */
export type RecordError = FieldError & { code?: string };

export type RecordResult =
  | { index: number; status: "accepted" | "duplicate"; event_id: string }
  | { index: number; status: "dead_lettered"; event_id: string; error: string }
  | { index: number; status: "rejected"; errors: RecordError[] };

export interface Admission {
  /** 202 once at least one record was published, 422 when every record was invalid. */
  status: 202 | 422;
  body: { accepted: number; duplicate: number; dead_lettered: number; rejected: number; results: RecordResult[] };
}

type Valid = { index: number; reading: Reading };

/** Low-cardinality reason for the rejected-records metric: the top-level field at fault. */
const reasonOf = (errors: FieldError[]) =>
  (errors[0]?.path.split(".")[0] || "record").replace(/[^a-z_]/g, "") || "record";

const retryAfter = (ms: number) => ({ "Retry-After": String(Math.max(1, Math.ceil(ms / 1000))) });

/** Admits the candidate records of one request; throws HttpError when it is refused as a whole. */
export async function admit(
  deps: AdmitDeps,
  tenant: TenantSettings,
  items: readonly BodyItem[],
  receivedAt: number,
): Promise<Admission> {
  const opts = deps.options;
  const results: RecordResult[] = new Array(items.length);
  const reject = (index: number, errors: RecordError[], reason = reasonOf(errors)) => {
    results[index] = { index, status: "rejected", errors };
    metrics.records.inc({ outcome: "rejected", reason }, 1);
  };
  let valid: Valid[] = [];
  for (const item of items) {
    if ("error" in item) {
      reject(item.index, [item.error]);
      continue;
    }
    const r = normalizeRecord(item.value, {
      tenant: tenant.id,
      nowMs: receivedAt,
      maxFutureMs: opts.maxFutureMs,
      identity: item.identity,
    });
    if (r.ok) valid.push({ index: item.index, reading: r.reading });
    else reject(item.index, r.errors);
  }
  if (valid.length === 0) {
    return { status: 422, body: { accepted: 0, duplicate: 0, dead_lettered: 0, rejected: items.length, results } };
  }
  valid = await applyDevicePolicy(deps.devices, tenant, valid, reject);
  valid = applyRateLimits(deps.limits, tenant, valid, reject);
  const { plan, outcomes } = await publish(deps.broker, opts, valid, receivedAt);
  fillOutcomes(results, valid, plan, outcomes);

  const counts = { accepted: 0, duplicate: 0, dead_lettered: 0, rejected: 0 };
  for (const r of results) counts[r.status]++;
  for (const [outcome, n] of Object.entries(counts))
    if (n > 0 && outcome !== "rejected") metrics.records.inc({ outcome, reason: "" }, n);
  return { status: 202, body: { ...counts, results } };
}

/** Plan and publish; a broker that cannot take them is a 503 (nothing may be assumed stored). */
async function publish(broker: Broker, opts: AdmitOptions, valid: Valid[], receivedAt: number) {
  try {
    return await planAndPublish(broker, valid, opts, receivedAt);
  } catch (err) {
    if (!(err instanceof BrokerUnavailable)) throw err;
    metrics.records.inc({ outcome: "unavailable", reason: "" }, valid.length);
    log.warn({ err: err.message, records: valid.length }, "publish failed; answering 503");
    throw new HttpError(
      503,
      "broker_unavailable",
      "the message broker is unavailable; nothing from this request may be assumed stored, retry the same records later",
      undefined,
      { "Retry-After": "1" },
    );
  }
}

/** Each published record's result from its broker message's outcome; in-request duplicates too. */
function fillOutcomes(results: RecordResult[], valid: Valid[], plan: Plan, outcomes: PublishOutcome[]) {
  const byIndex = new Map(valid.map((v) => [v.index, v.reading.eventId]));
  plan.messages.forEach((m, i) => {
    const o = outcomes[i]!;
    for (const index of m.indexes) {
      const event_id = byIndex.get(index)!;
      results[index] =
        o.status === "dead_lettered"
          ? { index, status: "dead_lettered", event_id, error: o.error }
          : { index, status: o.duplicate ? "duplicate" : "accepted", event_id };
    }
  });
  for (const index of plan.duplicates) results[index] = { index, status: "duplicate", event_id: byIndex.get(index)! };
}

type Reject = (index: number, errors: RecordError[], reason: string) => void;

/** Drops the records of devices the tenant's policy refuses; 403 when that leaves none. */
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
  if ("unavailable" in admission) {
    throw new HttpError(503, "devices_unavailable", "the device registry is unreachable; retry later", undefined, {
      "Retry-After": "5",
    });
  }
  if (admission.refused.size === 0) return valid;
  const kept = valid.filter((v) => {
    const refusal = admission.refused.get(v.reading.deviceId);
    if (refusal) reject(v.index, [{ path: "device_id", ...refusal }], refusal.code);
    return !refusal;
  });
  if (kept.length > 0) return kept;
  const { code } = admission.refused.values().next().value!;
  throw new HttpError(
    403,
    code,
    code === "device_limit"
      ? `tenant device limit (${tenant.limits.maxDevices}) reached: no record of this request is from a known device`
      : "no record of this request is from a registered device; register devices first (POST /api/v1/devices)",
  );
}

/**
 * Device buckets first: a device's records beyond its tokens are rejected one by one (the first
 * ones pass). Then the tenant's bucket, charged for what is left, refuses all or nothing; device
 * tokens taken for a refused request are given back. 429 when nothing passes.
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
    reject(
      v.index,
      [
        {
          path: "device_id",
          code: "rate_limited",
          message: `device rate limit (${rate} records/s, burst ${burst}) reached; retry in ${Math.ceil(grant.retryAfterMs / 1000)} s`,
        },
      ],
      "rate_limited",
    );
    return false;
  });
  if (kept.length === 0)
    throw new HttpError(
      429,
      "rate_limited",
      "every record is over its device's rate limit",
      undefined,
      retryAfter(soonestMs),
    );

  const taken = limits.takeTenant(tenant, kept.length);
  if (taken.ok) return kept;
  limits.refundDevices(tenant, grants);
  metrics.records.inc({ outcome: "rejected", reason: "rate_limited" }, kept.length);
  const { ratePerSecond: rate, burst } = tenant.limits;
  throw new HttpError(
    429,
    "rate_limited",
    `tenant ${tenant.id} is over its rate limit (${rate} records/s, burst ${burst})`,
    undefined,
    retryAfter(taken.retryAfterMs),
  );
}
