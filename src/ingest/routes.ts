/**
 * Ingest role: POST /api/v1/telemetry. Checks in order: key (401/403/503), content type and
 * encoding (415), body size before and after decoding (413), decoding and UTF-8 (400), parsing
 * (400/413), each record's validity, the tenant's device policy, the rate limits, then
 * publishing. Records refused by a later check are reported per record; when none is left the
 * request is refused as a whole with the status of the last check that refused them
 * (422, 403 unknown_device/device_limit, 429 rate_limited).
 */
import { z } from "zod";
import { planMessages } from "../core/plan.ts";
import { normalizeRecord, type FieldError, type Reading } from "../core/record.ts";
import { readBody } from "../http/body.ts";
import { ok, retryAfter as retryAfterDoc, routesOf } from "../http/route.ts";
import { HttpError } from "../http/errors.ts";
import { recordSchema } from "../core/record.ts";
import { err, ingestResultSchema } from "../openapi/views.ts";
import { logger } from "../lib/log.ts";
import type { Broker } from "../nats/connection.ts";
import type { DeviceRegistry } from "../tenants/devices.ts";
import type { RateLimiter } from "../tenants/limits.ts";
import type { TenantSettings } from "../core/tenant.ts";
import { bodyKind, parseBody } from "./parse.ts";
import { metrics } from "../lib/metrics.ts";
import { BrokerUnavailable, publishAll, type PublishOutcome } from "../nats/publish.ts";

const log = logger("ingest");

export interface IngestDeps {
  broker: Broker;
  devices: DeviceRegistry;
  limits: RateLimiter;
  options: IngestOptions;
}

export interface IngestOptions {
  stream: string;
  dlqStream: string;
  maxBodyBytes: number;
  recordsPerMessage: number;
  maxFutureMs: number;
  publishTimeoutMs: number;
  /** Clock, injectable for tests. */
  now?: () => number;
}

/** A field error, or a policy refusal with its code (unknown_device, device_limit, rate_limited). */
export type RecordError = FieldError & { code?: string };

export type RecordResult =
  | { index: number; status: "accepted" | "duplicate"; event_id: string }
  | { index: number; status: "dead_lettered"; event_id: string; error: string }
  | { index: number; status: "rejected"; errors: RecordError[] };

type Valid = { index: number; reading: Reading };

/** Low-cardinality reason for the rejected-records metric: the top-level field at fault. */
const reasonOf = (errors: FieldError[]) =>
  (errors[0]?.path.split(".")[0] || "record").replace(/[^a-z_]/g, "") || "record";

const retryAfter = (ms: number) => ({ "Retry-After": String(Math.max(1, Math.ceil(ms / 1000))) });

const MAX_MESSAGE_BYTES = 256 * 1024;

const route = routesOf<IngestDeps>();
const record = recordSchema.meta({ id: "TelemetryRecord", description: "One reading. Unknown fields are rejected." });

export const ingestRoutes = [
  route({
    method: "post",
    path: "/api/v1/telemetry",
    tag: "ingest",
    summary: "Send readings (one record, an array, or NDJSON)",
    description:
      "The key decides the tenant. 202 once JetStream has acknowledged at least one record; each record gets a result in request order. The body may be sent with Content-Encoding gzip or deflate; TELEMETRY_MAX_BODY holds before and after decoding. Checks in order: key, content type and encoding, body size, decoding, parsing, each record, device policy, rate limits, publish.",
    auth: "tenant",
    body: {
      "application/json": z.union([record, z.array(record)]),
      "application/x-ndjson": z
        .string()
        .meta({ description: "one record per line; a bad line rejects only that record" }),
    },
    responses: {
      202: ok("at least one record accepted", ingestResultSchema),
      422: ok("every record was invalid or refused (same body as 202)", ingestResultSchema),
      403: { ...err("tenant_suspended, or unknown_device / device_limit for every record") },
      400: err(
        "invalid_json, empty_body, invalid_body (not a record or an array), invalid_utf8, invalid_encoding (corrupt gzip/deflate)",
      ),
      413: err("body_too_large (as sent or once decoded) or too_many_records"),
      415: {
        ...err(
          "unsupported_media_type (Content-Type) or unsupported_encoding (Content-Encoding other than gzip, deflate, identity)",
        ),
        headers: { "Accept-Encoding": "the supported content codings (on unsupported_encoding)" },
      },
      429: {
        ...err("rate_limited, or auth_rate_limited (too many failed key checks from this address)"),
        headers: retryAfterDoc,
      },
      503: {
        ...err(
          "broker_unavailable (nothing stored: retry the same records), auth_unavailable, auth_busy, devices_unavailable",
        ),
        headers: retryAfterDoc,
      },
    },
    handler: async function ingestTelemetry(c, deps) {
      const opts = deps.options;
      const now = opts.now ?? Date.now;
      const tenant = c.get("tenantSettings");
      const kind = bodyKind(c.req.header("content-type"));
      const items = parseBody(await readBody(c.req.raw, opts.maxBodyBytes), kind, tenant.limits.maxRecordsPerRequest);
      const receivedAt = now();

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
        const r = normalizeRecord(item.value, { tenant: tenant.id, nowMs: receivedAt, maxFutureMs: opts.maxFutureMs });
        if (r.ok) valid.push({ index: item.index, reading: r.reading });
        else reject(item.index, r.errors);
      }
      if (valid.length === 0) {
        return c.json({ accepted: 0, duplicate: 0, dead_lettered: 0, rejected: items.length, results }, 422);
      }
      valid = await applyDevicePolicy(deps.devices, tenant, valid, reject);
      valid = applyRateLimits(deps.limits, tenant, valid, reject);

      const plan = planMessages(valid, { maxRecords: opts.recordsPerMessage, maxBytes: MAX_MESSAGE_BYTES, receivedAt });
      let outcomes: PublishOutcome[];
      try {
        outcomes = await publishAll(deps.broker, plan.messages, {
          stream: opts.stream,
          dlqStream: opts.dlqStream,
          timeoutMs: opts.publishTimeoutMs,
        });
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
      for (const index of plan.duplicates)
        results[index] = { index, status: "duplicate", event_id: byIndex.get(index)! };

      const counts = { accepted: 0, duplicate: 0, dead_lettered: 0, rejected: 0 };
      for (const r of results) counts[r.status]++;
      for (const [outcome, n] of Object.entries(counts))
        if (n > 0 && outcome !== "rejected") metrics.records.inc({ outcome, reason: "" }, n);
      return c.json({ ...counts, results }, 202);
    },
  }),
];

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
