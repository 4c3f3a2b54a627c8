/**
 * zod schemas of the JSON the handlers answer with. Each is tied to the function that builds
 * that JSON by a compile-time check at the bottom (`Same<...>`), so a handler's response cannot
 * change shape without this description changing too (tsc fails); integration/openapi also
 * parses real responses with them.
 */
import { z } from "zod";
import type { AlertView } from "../db/alert-row.ts";
import { SEVERITIES } from "../core/rules/schema.ts";
import { DELIVERY_ERROR_CATEGORIES } from "../core/delivery-error.ts";

export const iso = z.iso.datetime({ offset: true }).meta({ description: "RFC 3339 timestamp (UTC)" });
export const isoOrNull = iso.nullable();

export const errorSchema = z
  .object({
    error: z.object({
      code: z
        .string()
        .meta({ description: "stable machine-readable code, e.g. unauthenticated, invalid_body, rate_limited" }),
      message: z.string(),
      details: z
        .array(z.object({ path: z.string(), message: z.string() }))
        .optional()
        .meta({ description: "per field, for invalid_query and invalid_body" }),
    }),
  })
  .meta({ id: "Error" });

export const locationSchema = z.object({ lat: z.number(), lon: z.number() });

export const deviceSchema = z
  .object({
    device_id: z.string(),
    first_seen: iso,
    last_seen: iso.meta({ description: "newest reading time" }),
    last_received_at: iso,
    location: z.object({ lat: z.number(), lon: z.number(), at: isoOrNull }).nullable(),
  })
  .meta({ id: "Device" });

export const readingSchema = z
  .object({
    event_id: z.uuid(),
    ts: iso,
    location: locationSchema.nullable(),
    metrics: z.record(z.string(), z.number()),
    attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
    received_at: iso,
  })
  .meta({ id: "Reading" });

export const bucketSchema = z
  .object({ start: iso, count: z.number(), mean: z.number(), min: z.number(), max: z.number(), stddev: z.number() })
  .meta({ id: "RollupBucket" });

export const ruleSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    enabled: z.boolean(),
    severity: z.string(),
    metric: z.string().nullable(),
    devices: z.array(z.string()).nullable(),
    condition: z.unknown().meta({ description: "as in RuleInput.condition" }),
    for_seconds: z.number().int(),
    cooldown_seconds: z.number().int(),
    max_lateness_seconds: z
      .number()
      .int()
      .nullable()
      .meta({ description: "null: the server's TELEMETRY_ALERT_MAX_LATENESS; 0: no bound" }),
    created_at: iso,
    updated_at: iso,
  })
  .meta({ id: "Rule" });

export const alertSchema = z
  .object({
    id: z.uuid(),
    tenant: z.string(),
    rule_id: z.uuid(),
    rule_name: z.string(),
    device_id: z.string(),
    metric: z.string().nullable(),
    severity: z.enum(SEVERITIES),
    kind: z.string().meta({ description: "the rule's condition type" }),
    status: z.enum(["open", "acknowledged", "resolved"]),
    value: z.number().nullable(),
    message: z.string(),
    details: z.unknown(),
    triggered_at: iso.meta({ description: "reading time of the triggering reading" }),
    created_at: iso,
    acknowledged_at: isoOrNull,
    resolved_at: isoOrNull,
    resolution: z.string().nullable().meta({ description: "auto (cleared) or manual" }),
  })
  .meta({ id: "Alert" });

export const channelSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    kind: z.enum(["webhook", "hub"]),
    url: z.string(),
    enabled: z.boolean(),
    has_secret: z.boolean(),
    created_at: iso,
  })
  .meta({ id: "Channel" });

const DELIVERY_ERROR_DOC = `why the attempt failed: ${DELIVERY_ERROR_CATEGORIES.join(", ")} or http_<status> (a redirect included); never the socket error itself`;

export const deliverySchema = z
  .object({
    id: z.uuid(),
    alert_id: z.uuid(),
    event: z.string(),
    status: z.enum(["pending", "delivered", "failed"]),
    attempts: z.number().int(),
    next_attempt_at: isoOrNull,
    last_error: z.string().nullable().meta({ description: DELIVERY_ERROR_DOC }),
    created_at: isoOrNull,
    delivered_at: isoOrNull,
    attempt_log: z.array(
      z.object({
        attempt: z.number().int(),
        at: isoOrNull,
        status_code: z.number().int().nullable(),
        error: z.string().nullable().meta({ description: DELIVERY_ERROR_DOC }),
        duration_ms: z.number().nullable(),
      }),
    ),
  })
  .meta({ id: "Delivery" });

const recordResult = z.union([
  z.object({ index: z.number().int(), status: z.enum(["accepted", "duplicate"]), event_id: z.uuid() }),
  z.object({ index: z.number().int(), status: z.literal("dead_lettered"), event_id: z.uuid(), error: z.string() }),
  z.object({
    index: z.number().int(),
    status: z.literal("rejected"),
    errors: z.array(z.object({ path: z.string(), message: z.string(), code: z.string().optional() })),
  }),
]);

export const ingestResultSchema = z
  .object({
    accepted: z.number().int(),
    duplicate: z.number().int(),
    dead_lettered: z.number().int(),
    rejected: z.number().int(),
    results: z.array(recordResult).meta({ description: "one per record, in request order" }),
  })
  .meta({ id: "IngestResult" });

// Compile-time ties between these schemas and the handlers' view functions.
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const assertSame = <T extends true>() => undefined as unknown as T;
assertSame<
  Same<
    Pick<z.output<typeof alertSchema>, Exclude<keyof AlertView, "severity" | "status" | "details">>,
    Omit<AlertView, "severity" | "status" | "details">
  >
>();
assertSame<Same<keyof z.output<typeof alertSchema>, keyof AlertView>>();

/** An error response of a route, described (the body is always errorSchema). */
export const err = (description: string) => ({ description, schema: errorSchema });
