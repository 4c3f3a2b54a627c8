/**
 * Message routes, pure part (decision 0610): what a tenant sends to create one (filter,
 * destination), how a filter matches a reading, the subjects routes republish to, and the JSON
 * shape of a forwarded reading.
 *
 * Filter: `devices` (a list) or `device_pattern` (`*` any run, `?` one character), `metrics` (a
 * reading matches when it carries one of them, and only those are forwarded), `condition`
 * (`<metric> <op> <number>`, op one of > >= < <= == !=). Every part is optional; all given must hold.
 */
import { v5 as uuidv5 } from "uuid";
import { z } from "zod";
import { DEVICE_ID_PATTERN, METRIC_NAME_PATTERN } from "./record-limits.ts";
import type { AttributeValue, Reading } from "./record.ts";

export const ROUTE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const ROUTE_PREFIX = "routes.v1";
/** Most readings in one webhook POST (one batch). */
export const MAX_BATCH_READINGS = 500;
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_SUBJECT_TOKENS = 8;

const OPS = {
  ">": (a, b) => a > b,
  ">=": (a, b) => a >= b,
  "<": (a, b) => a < b,
  "<=": (a, b) => a <= b,
  "==": (a, b) => a === b,
  "!=": (a, b) => a !== b,
} as const satisfies Record<string, (a: number, b: number) => boolean>;
type Op = keyof typeof OPS;

export interface Condition {
  metric: string;
  op: Op;
  value: number;
}

/** `speed > 80` → { metric: "speed", op: ">", value: 80 }; null when it is not that shape. */
export function parseCondition(text: string): Condition | null {
  const m = /^\s*(\S+?)\s*(>=|<=|==|!=|>|<)\s*(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$/.exec(text);
  if (!m || !METRIC_NAME_PATTERN.test(m[1]!)) return null;
  const value = Number(m[3]);
  return Number.isFinite(value) ? { metric: m[1]!, op: m[2] as Op, value } : null;
}

export const filterSchema = z
  .strictObject({
    devices: z.array(z.string().regex(DEVICE_ID_PATTERN, "invalid device id")).min(1).max(10_000).optional(),
    device_pattern: z
      .string()
      .regex(/^[A-Za-z0-9_:*?-]{1,128}$/, "a device id with * (any run) and ? (one character)")
      .optional(),
    metrics: z.array(z.string().regex(METRIC_NAME_PATTERN, "invalid metric name")).min(1).max(100).optional(),
    condition: z
      .string()
      .max(200)
      .refine((t) => parseCondition(t) !== null, "must be `<metric> <op> <number>`, op one of > >= < <= == !=")
      .optional(),
  })
  .refine((f) => !(f.devices && f.device_pattern), { message: "give devices or device_pattern, not both" });
export type RouteFilter = z.output<typeof filterSchema>;

const subjectText = z.string().min(1).max(255);
export const destinationSchema = z.discriminatedUnion(
  "type",
  [
    z.strictObject({
      type: z.literal("webhook"),
      url: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }).max(2048),
      secret: z.string().min(16, "must be at least 16 characters").max(1024).optional(),
    }),
    z.strictObject({ type: z.literal("nats"), subject: subjectText.optional() }),
    z.strictObject({ type: z.literal("mqtt"), topic: subjectText.optional() }),
  ],
  { error: "destination.type must be one of webhook, nats, mqtt" },
);
export type RouteDestination = z.output<typeof destinationSchema>;

export const routeName = z
  .string()
  .regex(ROUTE_NAME_PATTERN, "1-63 of a-z, 0-9, '_', '-', starting with a letter or digit");

/** Where a route's NATS and MQTT republishes may go: under `routes.v1.<tenant>.`. */
export const tenantRoutePrefix = (tenant: string) => `${ROUTE_PREFIX}.${tenant}`;
/**
 * What a tenant's MQTT users may subscribe to: its route subjects (and the prefix itself, which
 * the MQTT filter `routes/v1/<tenant>/#` also covers).
 */
export const routeSubscribeSubjects = (tenant: string) => [tenantRoutePrefix(tenant), `${tenantRoutePrefix(tenant)}.>`];

/**
 * The NATS subject a nats or mqtt destination publishes to (an MQTT topic a/b/c is the subject
 * a.b.c on nats-server's MQTT listener), or an error text for a subject outside the tenant's prefix.
 */
export function republishSubject(
  tenant: string,
  route: string,
  d: RouteDestination,
): { subject: string } | { error: string } {
  if (d.type === "webhook") return { error: "a webhook has no subject" };
  const given = d.type === "nats" ? d.subject : d.topic;
  if (given === undefined) return { subject: `${tenantRoutePrefix(tenant)}.${route}` };
  const sep = d.type === "nats" ? "." : "/";
  const tokens = given.split(sep);
  const prefix = tenantRoutePrefix(tenant).split(".");
  const own = prefix.every((p, i) => tokens[i] === p);
  const rest = tokens.slice(prefix.length);
  if (!own || rest.length === 0 || rest.length > MAX_SUBJECT_TOKENS || !rest.every((t) => TOKEN.test(t)))
    return {
      error: `must be ${prefix.join(sep)}${sep} followed by 1-${MAX_SUBJECT_TOKENS} tokens of letters, digits, '_', '-' (no wildcards)`,
    };
  return { subject: tokens.join(".") };
}

/** A reading as routes forward it. */
export interface RoutedReading {
  event_id: string;
  device_id: string;
  ts: string;
  lat?: number;
  lon?: number;
  metrics?: Record<string, number>;
  attributes?: Record<string, AttributeValue>;
}

function globRegex(glob: string): RegExp {
  const body = glob.replace(/[*?]/g, (c) => (c === "*" ? ".*" : "."));
  return new RegExp(`^${body}$`);
}

/** The filter as a function: the reading as forwarded (only the filter's metrics), or null. */
export function compileFilter(f: RouteFilter): (r: Reading) => RoutedReading | null {
  const devices = f.devices ? new Set(f.devices) : null;
  const pattern = f.device_pattern ? globRegex(f.device_pattern) : null;
  const metrics = f.metrics ?? null;
  const cond = f.condition ? parseCondition(f.condition) : null;
  return (r) => {
    if (devices && !devices.has(r.deviceId)) return null;
    if (pattern && !pattern.test(r.deviceId)) return null;
    if (cond) {
      const v = r.metrics?.[cond.metric];
      if (v === undefined || !OPS[cond.op](v, cond.value)) return null;
    }
    let m = r.metrics;
    if (metrics) {
      const kept = metrics.filter((k) => r.metrics?.[k] !== undefined);
      if (kept.length === 0) return null;
      m = Object.fromEntries(kept.map((k) => [k, r.metrics![k]!]));
    }
    const out: RoutedReading = { event_id: r.eventId, device_id: r.deviceId, ts: new Date(r.ts).toISOString() };
    if (r.lat !== null && r.lon !== null) {
      out.lat = r.lat;
      out.lon = r.lon;
    }
    if (m) out.metrics = m;
    if (r.attributes) out.attributes = r.attributes;
    return out;
  };
}

/** Splits readings into batches of at most `max`. */
export function chunk<T>(items: readonly T[], max = MAX_BATCH_READINGS): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += max) out.push(items.slice(i, i + max));
  return out;
}

const BATCH_NAMESPACE = "5c0f8f2e-5b8e-4b53-9d4c-2f1d6f0b7a31";

/**
 * A batch's delivery id (decision 0611): the same for the same route, filter, range of the stream
 * (after `after`, up to `to`) and place in it, so a range taken again after a crash forms the same
 * batches with the same ids.
 */
export function batchId(routeId: string, filterKey: string, after: number, to: number, index: number): string {
  return uuidv5(`${routeId}\n${filterKey}\n${after}\n${to}\n${index}`, BATCH_NAMESPACE);
}
