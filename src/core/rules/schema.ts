/**
 * Alert rules: the shape a tenant sends over HTTP, validated with zod. Pure.
 * Units: thresholds and clear levels are in the metric's own units; `k` in standard deviations;
 * rates in metric units per minute; times in seconds or minutes as named.
 */
import { z } from "zod";
import { DEVICE_ID_PATTERN, METRIC_NAME_PATTERN } from "../record.ts";

export const SEVERITIES = ["info", "warning", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

const finite = (what: string) => z.number({ error: `${what} must be a finite number` });
const latLon = z.tuple([finite("lat").min(-90).max(90), finite("lon").min(-180).max(180)]);

export const conditionSchema = z.discriminatedUnion(
  "type",
  [
    z.strictObject({
      type: z.literal("above_threshold"),
      threshold: finite("threshold"),
      clear: finite("clear").optional(),
    }),
    z.strictObject({
      type: z.literal("below_threshold"),
      threshold: finite("threshold"),
      clear: finite("clear").optional(),
    }),
    z.strictObject({
      type: z.literal("deviation_from_mean"),
      k: finite("k").positive("k must be > 0"),
      window_minutes: z.number().int().min(5, "window_minutes must be at least 5").max(10_080),
      /** Optional clear level in standard deviations (must be below k). */
      clear_k: finite("clear_k").nonnegative().optional(),
    }),
    z.strictObject({
      type: z.literal("rate_of_change"),
      limit_per_minute: finite("limit_per_minute").positive("limit_per_minute must be > 0"),
      direction: z.enum(["up", "down", "either"]).default("either"),
      clear_per_minute: finite("clear_per_minute").nonnegative().optional(),
    }),
    z.strictObject({ type: z.literal("no_data"), minutes: z.number().int().min(1).max(10_080) }),
    z.strictObject({
      type: z.literal("geofence"),
      on: z.enum(["enter", "exit", "both"]),
      circle: z
        .strictObject({
          lat: finite("lat").min(-90).max(90),
          lon: finite("lon").min(-180).max(180),
          radius_m: finite("radius_m").positive(),
        })
        .optional(),
      polygon: z.array(latLon).min(3, "a polygon needs at least 3 points").max(1_000).optional(),
    }),
  ],
  {
    error:
      "condition.type must be one of above_threshold, below_threshold, deviation_from_mean, rate_of_change, no_data, geofence",
  },
);
export type Condition = z.output<typeof conditionSchema>;
export type ConditionType = Condition["type"];

export const ruleInputSchema = z
  .strictObject({
    name: z.string().min(1).max(200),
    enabled: z.boolean().default(true),
    severity: z.enum(SEVERITIES).default("warning"),
    metric: z.string().regex(METRIC_NAME_PATTERN, "invalid metric name").optional(),
    devices: z.array(z.string().regex(DEVICE_ID_PATTERN, "invalid device id")).min(1).max(10_000).optional(),
    condition: conditionSchema,
    for_seconds: z
      .number()
      .int()
      .min(0)
      .max(86_400 * 7)
      .default(0),
    cooldown_seconds: z
      .number()
      .int()
      .min(0)
      .max(86_400 * 30)
      .default(900),
    /**
     * Readings received more than this many seconds after their own time are stored but not
     * evaluated (buffered uploads; decision 0460). Absent: the server's TELEMETRY_ALERT_MAX_LATENESS;
     * 0: every reading is evaluated, however late.
     */
    max_lateness_seconds: z
      .number()
      .int()
      .min(0)
      .max(86_400 * 365)
      .optional(),
  })
  .superRefine((rule, ctx) => {
    const c = rule.condition;
    const needsMetric = c.type !== "geofence" && c.type !== "no_data";
    if (needsMetric && !rule.metric)
      ctx.addIssue({ code: "custom", path: ["metric"], message: `metric is required for ${c.type}` });
    if (c.type === "geofence" && rule.metric)
      ctx.addIssue({ code: "custom", path: ["metric"], message: "geofence rules use positions, not a metric" });
    if (c.type === "geofence" && !!c.circle === !!c.polygon) {
      ctx.addIssue({
        code: "custom",
        path: ["condition"],
        message: "a geofence needs exactly one of circle or polygon",
      });
    }
    if (c.type === "above_threshold" && c.clear !== undefined && c.clear > c.threshold) {
      ctx.addIssue({
        code: "custom",
        path: ["condition", "clear"],
        message: "clear must be at or below threshold for above_threshold",
      });
    }
    if (c.type === "below_threshold" && c.clear !== undefined && c.clear < c.threshold) {
      ctx.addIssue({
        code: "custom",
        path: ["condition", "clear"],
        message: "clear must be at or above threshold for below_threshold",
      });
    }
    if (c.type === "deviation_from_mean" && c.clear_k !== undefined && c.clear_k > c.k) {
      ctx.addIssue({ code: "custom", path: ["condition", "clear_k"], message: "clear_k must be at or below k" });
    }
    if (c.type === "rate_of_change" && c.clear_per_minute !== undefined && c.clear_per_minute > c.limit_per_minute) {
      ctx.addIssue({
        code: "custom",
        path: ["condition", "clear_per_minute"],
        message: "clear_per_minute must be at or below limit_per_minute",
      });
    }
  });
export type RuleInput = z.output<typeof ruleInputSchema>;

/** A stored rule, as the evaluator sees it. */
export interface Rule extends RuleInput {
  id: string;
  tenant: string;
}

/** Whether a rule applies to a device (and metric, for metric rules). */
export function ruleApplies(rule: Rule, deviceId: string, metric?: string): boolean {
  if (!rule.enabled) return false;
  if (rule.devices && !rule.devices.includes(deviceId)) return false;
  if (metric !== undefined && rule.metric !== metric) return false;
  return true;
}
