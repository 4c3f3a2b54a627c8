/**
 * The pure parts of the admission step (admission.ts): the result and refusal types, the
 * rejected-records metric reason, each published record's result from its message's outcome and
 * the MQTT message candidate and verdict shapes. No I/O here.
 */
import type { Plan } from "../core/plan.ts";
import type { FieldError, Reading } from "../core/record.ts";
import type { PublishOutcome } from "../nats/publish.ts";

/** A decoded record (`value`, not validated yet), or the source's own error for it. */
/** `identity`: a suffix of the record's event id (NormalizeOptions.identity), for line protocol. */
export type Candidate = { index: number; value: unknown; identity?: string } | { index: number; error: FieldError };

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

/** Why a whole request was refused; `retryAfterMs` when trying again later can help. */
export type Refusal =
  | { code: "unknown_device" | "device_limit"; message: string }
  | { code: "rate_limited" | "devices_unavailable"; message: string; retryAfterMs: number }
  | { code: "broker_unavailable"; message: string; retryAfterMs: number; detail: string; records: number };

export type Valid = { index: number; reading: Reading };
export type Reject = (index: number, errors: RecordError[], reason: string) => void;

/** Low-cardinality reason for the rejected-records metric: the top-level field at fault. */
export const reasonOf = (errors: FieldError[]) =>
  (errors[0]?.path.split(".")[0] || "record").replace(/[^a-z_]/g, "") || "record";

/** Each published record's result from its broker message's outcome; in-request duplicates too. */
export function fillOutcomes(results: RecordResult[], valid: Valid[], plan: Plan, outcomes: PublishOutcome[]) {
  const byIndex: string[] = new Array(results.length);
  for (const v of valid) byIndex[v.index] = v.reading.eventId;
  plan.messages.forEach((m, i) => {
    const o = outcomes[i]!;
    for (const index of m.indexes) {
      const event_id = byIndex[index]!;
      results[index] =
        o.status === "dead_lettered"
          ? { index, status: "dead_lettered", event_id, error: o.error }
          : { index, status: o.duplicate ? "duplicate" : "accepted", event_id };
    }
  });
  for (const index of plan.duplicates) results[index] = { index, status: "duplicate", event_id: byIndex[index]! };
}

/** A whole request refused (thrown by the device policy and rate-limit steps). */
export class Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
  }
}

// ---- Messages (MQTT) ----

/** A message with valid records, for the tenant and device its topic names. */
export interface MessageCandidate {
  tenant: string;
  deviceId: string;
  /** Valid records in the message. */
  records: number;
}

export type Verdict = { pass: true } | { refused: string } | { retryMs: number; limit?: "tenant" | "device" };
