/**
 * The wire format of one telemetry record, its validation and its normalization.
 * Pure: no I/O, no clock (the caller passes `now`), no randomness.
 */
import { z } from "zod";
import { checkBounds, parseRfc3339 } from "./timestamp.ts";
import { eventId } from "./event-id.ts";
import { fastRecord } from "./record-fast.ts";
import {
  MAX_ATTRIBUTE_BYTES,
  MAX_ATTRIBUTES,
  MAX_METRICS,
  METRIC_NAME_PATTERN,
  METRIC_RANGE_MESSAGE,
  metricInRange,
  RESERVED_NAMES,
} from "./record-limits.ts";

export {
  COORDINATE_DECIMALS,
  DEVICE_ID_PATTERN,
  MAX_ATTRIBUTE_BYTES,
  MAX_ATTRIBUTES,
  MAX_METRIC_MAGNITUDE,
  MAX_METRICS,
  METRIC_NAME_PATTERN,
  MIN_METRIC_MAGNITUDE,
  RESERVED_NAMES,
} from "./record-limits.ts";

/** Explains exactly why a device id is refused (ids never reach a NATS subject, but must be safe to). */
export function deviceIdProblem(id: string): string | null {
  if (id.length === 0) return "must not be empty";
  if (id.length > 128) return "must be at most 128 characters";
  for (const ch of id) {
    if (/[A-Za-z0-9_:-]/.test(ch)) continue;
    if (ch === ".") return "must not contain '.'; allowed are letters, digits, '_', '-' and ':'";
    if (ch === "*" || ch === ">") return `must not contain '${ch}'; allowed are letters, digits, '_', '-' and ':'`;
    if (/\s/.test(ch)) return "must not contain whitespace; allowed are letters, digits, '_', '-' and ':'";
    if (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) return "must not contain control characters";
    if (ch.charCodeAt(0) > 0x7e) return "must be ASCII: letters, digits, '_', '-' and ':'";
    return `must not contain '${ch}'; allowed are letters, digits, '_', '-' and ':'`;
  }
  return null;
}

const finite = (what: string) =>
  z.number({
    error: (issue) => (issue.input === undefined ? `${what} is required` : `${what} must be a finite number`),
  });

const deviceId = z.string({ error: "device_id is required and must be a string" }).superRefine((id, ctx) => {
  const problem = deviceIdProblem(id);
  if (problem) ctx.addIssue({ code: "custom", message: `device_id ${problem}` });
});

const timestamp = z.union([z.string(), z.number()], {
  error: (issue) =>
    issue.input === undefined ? "ts is required" : "ts must be an RFC 3339 string or epoch milliseconds",
});

const location = z.strictObject(
  {
    lat: finite("lat").min(-90, "lat must be between -90 and 90").max(90, "lat must be between -90 and 90"),
    lon: finite("lon").min(-180, "lon must be between -180 and 180").max(180, "lon must be between -180 and 180"),
  },
  { error: "location must be an object {lat, lon}" },
);

const metrics = z
  .record(
    z.string().regex(METRIC_NAME_PATTERN, "metric names are 1-64 of letters, digits, '_', '.', ':', '/', '-'"),
    z.number({ error: "metric values must be finite numbers" }).refine(metricInRange, METRIC_RANGE_MESSAGE),
    { error: (issue) => (issue.code === "invalid_type" ? "metrics must be an object of name -> number" : undefined) },
  )
  .refine((m) => Object.keys(m).length <= MAX_METRICS, `at most ${MAX_METRICS} metrics per record`);

const attributeString = z
  .string()
  .max(256, "attribute strings are at most 256 characters")
  .refine(
    (v) => !v.includes("\u0000") && v.isWellFormed(),
    "attribute strings must be valid Unicode without NUL characters",
  );
const attributeValue = z.union([attributeString, z.number(), z.boolean(), z.null()], {
  error: "attribute values must be strings, finite numbers, booleans or null",
});
const attributes = z
  .record(
    z.string().regex(METRIC_NAME_PATTERN, "attribute names are 1-64 of letters, digits, '_', '.', ':', '/', '-'"),
    attributeValue,
    {
      error: (issue) => (issue.code === "invalid_type" ? "attributes must be an object" : undefined),
    },
  )
  .refine((a) => Object.keys(a).length <= MAX_ATTRIBUTES, `at most ${MAX_ATTRIBUTES} attributes per record`)
  .refine(
    (a) => JSON.stringify(a).length <= MAX_ATTRIBUTE_BYTES,
    `attributes are at most ${MAX_ATTRIBUTE_BYTES} bytes as JSON`,
  );

export const recordSchema = z.strictObject(
  {
    device_id: deviceId,
    ts: timestamp,
    location: location.optional(),
    metrics: metrics.optional(),
    attributes: attributes.optional(),
  },
  { error: (issue) => (issue.code === "invalid_type" ? "a record must be a JSON object" : undefined) },
);

export type RecordInput = z.input<typeof recordSchema>;
export type AttributeValue = string | number | boolean | null;

/** A validated, normalized reading: the unit the pipeline carries and stores. */
export interface Reading {
  eventId: string;
  tenant: string;
  deviceId: string;
  /** Epoch milliseconds, UTC. */
  ts: number;
  lat: number | null;
  lon: number | null;
  metrics: Record<string, number> | null;
  attributes: Record<string, AttributeValue> | null;
}

export interface FieldError {
  path: string;
  message: string;
}

export type NormalizeResult = { ok: true; reading: Reading } | { ok: false; errors: FieldError[] };

export interface NormalizeOptions {
  tenant: string;
  nowMs: number;
  maxFutureMs: number;
  /** Appended to the event id's canonical name (core/event-id.ts); line protocol's measurement and field keys. */
  identity?: string;
}

/** Rounds half away from zero to 7 decimals; returns the scaled integer and the number. */
export function roundCoordinate(value: number): number {
  const scaled = Math.round(Math.abs(value) * 1e7) * Math.sign(value);
  return scaled === 0 ? 0 : scaled / 1e7;
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.map(String).join(".");
}

/** An error for each metric or attribute named `__proto__`, `constructor` or `prototype`. */
export function reservedNameErrors(input: unknown): FieldError[] {
  const errors: FieldError[] = [];
  if (typeof input !== "object" || input === null) return errors;
  for (const [field, what] of [
    ["metrics", "metric"],
    ["attributes", "attribute"],
  ] as const) {
    const names = Object.hasOwn(input, field) ? (input as Record<string, unknown>)[field] : undefined;
    if (typeof names !== "object" || names === null || Array.isArray(names)) continue;
    for (const name of RESERVED_NAMES) {
      if (Object.hasOwn(names, name))
        errors.push({
          path: `${field}.${name}`,
          message: `'${name}' is a reserved name: ${what} names must not be __proto__, constructor or prototype`,
        });
    }
  }
  return errors;
}

function issueErrors(issues: readonly z.core.$ZodIssue[]): FieldError[] {
  const errors: FieldError[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) errors.push({ path: pathOf([...issue.path, key]), message: "unknown field" });
    } else if (issue.code === "invalid_key") {
      errors.push({ path: pathOf(issue.path), message: issue.issues[0]?.message ?? issue.message });
    } else {
      errors.push({ path: pathOf(issue.path), message: issue.message });
    }
  }
  return errors;
}

const NO_ERRORS: readonly FieldError[] = Object.freeze([]);

/** Whether an object has an own key (`Object.keys(o).length > 0` without the array per record). */
function hasKeys(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

export function normalizeRecord(input: unknown, opts: NormalizeOptions): NormalizeResult {
  const fast = fastRecord(input); // refuses reserved names itself
  const parsed = fast ? ({ success: true, data: fast } as const) : recordSchema.safeParse(input);
  const reserved = fast ? NO_ERRORS : reservedNameErrors(input);
  if (!parsed.success || reserved.length > 0) {
    return { ok: false, errors: [...(parsed.success ? [] : issueErrors(parsed.error.issues)), ...reserved] };
  }
  const rec = parsed.data;
  let ts: number;
  if (typeof rec.ts === "number") {
    if (!Number.isSafeInteger(rec.ts))
      return { ok: false, errors: [{ path: "ts", message: "epoch milliseconds must be an integer" }] };
    ts = rec.ts;
  } else {
    const r = parseRfc3339(rec.ts);
    if (!r.ok) return { ok: false, errors: [{ path: "ts", message: r.message }] };
    ts = r.ms;
  }
  const bound = checkBounds(ts, opts.nowMs, opts.maxFutureMs);
  if (bound) return { ok: false, errors: [{ path: "ts", message: bound }] };

  const hasMetrics = rec.metrics !== undefined && hasKeys(rec.metrics);
  if (!rec.location && !hasMetrics) {
    return { ok: false, errors: [{ path: "", message: "a record needs a location or at least one metric" }] };
  }
  const lat = rec.location ? roundCoordinate(rec.location.lat) : null;
  const lon = rec.location ? roundCoordinate(rec.location.lon) : null;
  const attrs = rec.attributes && hasKeys(rec.attributes) ? rec.attributes : null;
  return {
    ok: true,
    reading: {
      eventId: eventId({ tenant: opts.tenant, deviceId: rec.device_id, ts, lat, lon, suffix: opts.identity }),
      tenant: opts.tenant,
      deviceId: rec.device_id,
      ts,
      lat,
      lon,
      metrics: hasMetrics ? rec.metrics! : null,
      attributes: attrs,
    },
  };
}
