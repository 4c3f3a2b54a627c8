import { describe, expect, test } from "bun:test";
import { ruleInputSchema } from "../../src/core/rules/schema.ts";

const issuesOf = (input: unknown) => {
  const r = ruleInputSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => ({ path: i.path, message: i.message }));
};

const circle = { lat: 52.52, lon: 13.405, radius_m: 500 };
const square: Array<[number, number]> = [
  [0, 0],
  [0, 1],
  [1, 1],
  [1, 0],
];

describe("ruleInputSchema: valid rules", () => {
  test.each([
    ["above_threshold", { metric: "temp", condition: { type: "above_threshold", threshold: 30, clear: 28 } }],
    ["below_threshold", { metric: "temp", condition: { type: "below_threshold", threshold: 5 } }],
    [
      "deviation_from_mean",
      { metric: "temp", condition: { type: "deviation_from_mean", k: 3, window_minutes: 30, clear_k: 2 } },
    ],
    ["rate_of_change", { metric: "temp", condition: { type: "rate_of_change", limit_per_minute: 5 } }],
    ["no_data (device)", { condition: { type: "no_data", minutes: 10 } }],
    ["no_data (metric)", { metric: "temp", condition: { type: "no_data", minutes: 10 } }],
    ["geofence circle", { condition: { type: "geofence", on: "enter", circle } }],
    ["geofence polygon", { condition: { type: "geofence", on: "both", polygon: square } }],
  ])("%s parses with defaults applied", (_, input) => {
    const r = ruleInputSchema.safeParse({ name: "r", ...input });
    expect(r.success).toBe(true);
    if (!r.success) return;
    expect(r.data).toMatchObject({
      enabled: true,
      severity: "warning",
      cooldown_seconds: 900,
      for_seconds: 0,
      condition: input.condition,
    });
  });

  test("rate_of_change direction defaults to either", () => {
    const r = ruleInputSchema.parse({
      name: "r",
      metric: "temp",
      condition: { type: "rate_of_change", limit_per_minute: 5 },
    });
    expect(r.condition).toEqual({ type: "rate_of_change", limit_per_minute: 5, direction: "either" });
  });

  test("explicit values override the defaults", () => {
    const r = ruleInputSchema.parse({
      name: "r",
      metric: "temp",
      severity: "critical",
      enabled: false,
      for_seconds: 60,
      cooldown_seconds: 0,
      condition: { type: "rate_of_change", limit_per_minute: 5, direction: "down" },
    });
    expect(r).toMatchObject({
      severity: "critical",
      enabled: false,
      for_seconds: 60,
      cooldown_seconds: 0,
      condition: { direction: "down" },
    });
  });

  test("clear equal to the threshold is allowed", () => {
    expect(
      issuesOf({ name: "r", metric: "t", condition: { type: "above_threshold", threshold: 30, clear: 30 } }),
    ).toEqual([]);
    expect(
      issuesOf({ name: "r", metric: "t", condition: { type: "below_threshold", threshold: 5, clear: 5 } }),
    ).toEqual([]);
  });
});

describe("ruleInputSchema: errors", () => {
  test.each([
    [
      "metric missing on a threshold rule",
      { condition: { type: "above_threshold", threshold: 30 } },
      { path: ["metric"], message: "metric is required for above_threshold" },
    ],
    [
      "metric missing on a deviation rule",
      { condition: { type: "deviation_from_mean", k: 3, window_minutes: 30 } },
      { path: ["metric"], message: "metric is required for deviation_from_mean" },
    ],
    [
      "metric on a geofence",
      { metric: "temp", condition: { type: "geofence", on: "enter", circle } },
      { path: ["metric"], message: "geofence rules use positions, not a metric" },
    ],
    [
      "geofence with both circle and polygon",
      { condition: { type: "geofence", on: "enter", circle, polygon: square } },
      { path: ["condition"], message: "a geofence needs exactly one of circle or polygon" },
    ],
    [
      "geofence with neither circle nor polygon",
      { condition: { type: "geofence", on: "exit" } },
      { path: ["condition"], message: "a geofence needs exactly one of circle or polygon" },
    ],
    [
      "clear above threshold on above_threshold",
      { metric: "temp", condition: { type: "above_threshold", threshold: 30, clear: 31 } },
      { path: ["condition", "clear"], message: "clear must be at or below threshold for above_threshold" },
    ],
    [
      "clear below threshold on below_threshold",
      { metric: "temp", condition: { type: "below_threshold", threshold: 5, clear: 4 } },
      { path: ["condition", "clear"], message: "clear must be at or above threshold for below_threshold" },
    ],
    [
      "clear_k above k",
      { metric: "temp", condition: { type: "deviation_from_mean", k: 2, window_minutes: 30, clear_k: 3 } },
      { path: ["condition", "clear_k"], message: "clear_k must be at or below k" },
    ],
    [
      "unknown condition type",
      { metric: "temp", condition: { type: "spike", threshold: 1 } },
      {
        path: ["condition", "type"],
        message:
          "condition.type must be one of above_threshold, below_threshold, deviation_from_mean, rate_of_change, no_data, geofence",
      },
    ],
    [
      "unknown field on the rule",
      { metric: "temp", priority: 1, condition: { type: "above_threshold", threshold: 30 } },
      { path: [], message: 'Unrecognized key: "priority"' },
    ],
    [
      "unknown field in the condition",
      { metric: "temp", condition: { type: "above_threshold", threshold: 30, hysteresis: 2 } },
      { path: ["condition"], message: 'Unrecognized key: "hysteresis"' },
    ],
    [
      "window_minutes below 5",
      { metric: "temp", condition: { type: "deviation_from_mean", k: 3, window_minutes: 4 } },
      { path: ["condition", "window_minutes"], message: "window_minutes must be at least 5" },
    ],
    [
      "polygon with two points",
      {
        condition: {
          type: "geofence",
          on: "enter",
          polygon: [
            [0, 0],
            [1, 1],
          ],
        },
      },
      { path: ["condition", "polygon"], message: "a polygon needs at least 3 points" },
    ],
  ])("%s", (_, input, expected) => {
    expect(issuesOf({ name: "r", ...input })).toEqual([expected]);
  });
});
