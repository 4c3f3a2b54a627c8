/**
 * The admission step of the HTTP sources, as HTTP: the shared admission (pipeline/admission:
 * validation and normalization with event ids, device policy, rate limits, plan → publish with
 * ack, one result per record in request order) with its whole-request refusals mapped to
 * HttpErrors: 403 unknown_device/device_limit, 429 rate_limited, 503 devices_unavailable/
 * broker_unavailable, each with Retry-After where trying later helps. When every record is
 * invalid the admission is a 422 result, not an error. A device key's request is held to its
 * device first (403 device_mismatch, nothing published).
 */
import type { TenantSettings } from "../core/tenant.ts";
import { HttpError } from "../http/errors.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import {
  admitRecords,
  type Admission,
  type AdmissionDeps,
  type AdmissionOptions,
  type Refusal,
} from "../pipeline/admission.ts";
import type { BodyItem } from "./parse.ts";

export type { Admission, RecordError, RecordResult } from "../pipeline/admission.ts";
export type AdmitDeps = AdmissionDeps;
export type AdmitOptions = AdmissionOptions;

const log = logger("ingest");

const STATUS: Record<Refusal["code"], 403 | 429 | 503> = {
  unknown_device: 403,
  device_limit: 403,
  rate_limited: 429,
  devices_unavailable: 503,
  broker_unavailable: 503,
};

/** Admits the candidate records of one request; throws HttpError when it is refused as a whole. */
export async function admit(
  deps: AdmitDeps,
  tenant: TenantSettings,
  items: readonly BodyItem[],
  receivedAt: number,
  device: string | null,
): Promise<Admission> {
  if (device !== null) holdToDevice(items, device);
  const admission = await admitRecords(deps, tenant, items, receivedAt);
  if (!("refused" in admission)) return admission;
  throw httpError(admission.refused);
}

export function httpError(r: Refusal): HttpError {
  if (r.code === "broker_unavailable") log.warn({ err: r.detail, records: r.records }, "publish failed; answering 503");
  const headers =
    "retryAfterMs" in r ? { "Retry-After": String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))) } : undefined;
  return new HttpError(STATUS[r.code], r.code, r.message, undefined, headers);
}

/** A device key's request: every record that names a device must name the key's (403 device_mismatch). */
function holdToDevice(items: readonly BodyItem[], device: string): void {
  for (const item of items) {
    if (!("value" in item) || item.value === null || typeof item.value !== "object") continue;
    const given = (item.value as { device_id?: unknown }).device_id;
    if (given === undefined || given === device) continue;
    metrics.records.inc({ outcome: "rejected", reason: "device_mismatch" }, items.length);
    throw new HttpError(
      403,
      "device_mismatch",
      `this key is device ${device}'s: record ${item.index} is for another device id; nothing was stored`,
      { index: item.index },
    );
  }
}
