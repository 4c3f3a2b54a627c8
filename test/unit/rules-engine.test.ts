import { describe, expect, test } from "bun:test";
import {
  evaluateMetric,
  evaluatePosition,
  evaluateSilence,
  haversineMeters,
  INITIAL_STATE,
  pointInPolygon,
  type Decision,
  type RuleState,
  type WindowStats,
} from "../../src/core/rules/engine.ts";
import { ruleInputSchema, type Rule } from "../../src/core/rules/schema.ts";

const T0 = Date.UTC(2026, 0, 1, 12);
const sec = (s: number) => T0 + s * 1000;
const MIN = 60_000;

function makeRule(input: Record<string, unknown>): Rule {
  return { id: "rule-1", tenant: "acme", ...ruleInputSchema.parse({ name: "r", ...input }) };
}
const metricRule = (condition: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  makeRule({ metric: "temp", condition, ...extra });

type Reading = [seconds: number, value: number, stats?: WindowStats | null];

/** Feeds readings in order, threading state; returns every decision and when alerts fired. */
function run(rule: Rule, readings: Reading[], start: RuleState = INITIAL_STATE) {
  let state = start;
  const decisions: Decision[] = [];
  for (const [s, value, stats] of readings) {
    const d = evaluateMetric(rule, state, { ts: sec(s), value, eventId: `e${s}`, stats });
    decisions.push(d);
    state = d.state;
  }
  const firedAt = decisions.flatMap((d, i) => (d.fire ? [readings[i]![0]] : []));
  return { state, decisions, firedAt, resolves: decisions.filter((d) => d.resolve).length };
}
/** Readings every `step` seconds in [from, to). */
const series = (from: number, to: number, step: number, value: (s: number) => number): Reading[] =>
  Array.from({ length: Math.ceil((to - from) / step) }, (_, i) => [from + i * step, value(from + i * step)]);

describe("threshold rules", () => {
  const above = metricRule({ type: "above_threshold", threshold: 30 });
  const below = metricRule({ type: "below_threshold", threshold: 5 });

  test("above_threshold fires only strictly above the threshold", () => {
    expect(
      run(above, [
        [0, 29],
        [10, 30],
      ]).firedAt,
    ).toEqual([]);
    const d = run(above, [[0, 31.5]]).decisions[0]!;
    expect(d.fire).toEqual({
      value: 31.5,
      message: "temp 31.5 is above 30",
      details: { threshold: 30, clear: null, value: 31.5 },
    });
    expect(d.state).toMatchObject({
      active: true,
      activeSince: sec(0),
      lastAlertAt: sec(0),
      lastValue: 31.5,
      lastTs: sec(0),
    });
  });

  test("below_threshold mirrors it", () => {
    expect(
      run(below, [
        [0, 6],
        [10, 5],
      ]).firedAt,
    ).toEqual([]);
    expect(run(below, [[0, 4]]).decisions[0]!.fire?.message).toBe("temp 4 is below 5");
  });

  test("records the last value and time even when nothing fires", () => {
    expect(run(above, [[0, 20]]).state).toEqual({ ...INITIAL_STATE, lastValue: 20, lastTs: sec(0) });
  });

  test("stale and duplicate readings are ignored and leave the state as it was", () => {
    const { state } = run(above, [[100, 20]]);
    for (const s of [100, 50]) {
      const d = evaluateMetric(above, state, { ts: sec(s), value: 99, eventId: "late" });
      expect(d).toEqual({ state, fire: null, resolve: false, skipped: "stale" });
      expect(d.state).toBe(state);
    }
  });

  test("rules of other kinds are not applicable", () => {
    const fence = makeRule({ condition: { type: "geofence", on: "enter", circle: { lat: 0, lon: 0, radius_m: 1 } } });
    expect(evaluateMetric(fence, INITIAL_STATE, { ts: T0, value: 1, eventId: "e" }).skipped).toBe("not_applicable");
  });
});

describe("hysteresis and resolution", () => {
  test("oscillating between clear and threshold alerts once, and resolves below the clear level", () => {
    const rule = metricRule({ type: "above_threshold", threshold: 30, clear: 25 });
    const r = run(rule, [
      [0, 31],
      [10, 29],
      [20, 31],
      [30, 26],
      [40, 31],
      [50, 29],
    ]);
    expect(r.firedAt).toEqual([0]);
    expect(r.resolves).toBe(0);
    const after = run(rule, [[60, 24]], r.state);
    expect(after.decisions[0]).toMatchObject({
      fire: null,
      resolve: true,
      state: { active: false, activeSince: null },
    });
  });

  test("without a clear level and cooldown 0, every crossing alerts and nothing auto-resolves", () => {
    const rule = metricRule({ type: "above_threshold", threshold: 30 }, { cooldown_seconds: 0 });
    const r = run(rule, [
      [0, 31],
      [10, 29],
      [20, 31],
      [30, 29],
      [40, 31],
      [50, 29],
    ]);
    expect(r.firedAt).toEqual([0, 20, 40]);
    expect(r.resolves).toBe(0);
    expect(r.state.active).toBe(false);
  });

  test("the cooldown spans crossings of the same (rule, device)", () => {
    const rule = metricRule({ type: "above_threshold", threshold: 30 });
    expect(
      run(rule, [
        [0, 31],
        [10, 29],
        [20, 31],
        [900, 29],
        [910, 31],
      ]).firedAt,
    ).toEqual([0, 910]);
  });
});

describe("for_seconds", () => {
  const rule = metricRule({ type: "above_threshold", threshold: 30 }, { for_seconds: 60 });

  test("fires only once the condition has held for the duration", () => {
    expect(
      run(
        rule,
        series(0, 120, 10, () => 31),
      ).firedAt,
    ).toEqual([60]);
  });

  test("never fires when it clears before the duration", () => {
    const r = run(
      rule,
      series(0, 600, 10, (s) => (s % 60 < 50 ? 31 : 29)),
    );
    expect(r.firedAt).toEqual([]);
  });

  test("values between clear and threshold keep holding", () => {
    const banded = metricRule({ type: "above_threshold", threshold: 30, clear: 25 }, { for_seconds: 60 });
    const r = run(banded, [
      [0, 31],
      [30, 28],
      [60, 28],
    ]);
    expect(r.firedAt).toEqual([60]);
    expect(r.decisions[2]!.fire?.message).toBe("temp 28 is still above the clear level 25 (threshold 30)");
  });
});

describe("cooldown", () => {
  const rule = metricRule({ type: "above_threshold", threshold: 30 }, { cooldown_seconds: 900 });
  const stuck = series(0, 1800, 10, () => 35);

  test("a sensor stuck above the threshold for 30 minutes alerts exactly twice", () => {
    expect(stuck).toHaveLength(180);
    expect(run(rule, stuck).firedAt).toEqual([0, 900]);
  });

  test("the state survives a restart (JSON round trip) in the middle", () => {
    const first = run(rule, stuck.slice(0, 70));
    const restored = JSON.parse(JSON.stringify(first.state)) as RuleState;
    const second = run(rule, stuck.slice(70), restored);
    expect([...first.firedAt, ...second.firedAt]).toEqual([0, 900]);
  });
});

describe("deviation_from_mean", () => {
  const rule = metricRule({ type: "deviation_from_mean", k: 3, window_minutes: 30 });
  const stats = (buckets: number, mean = 20, stddev = 2): WindowStats => ({
    buckets,
    count: buckets * 60,
    mean,
    stddev,
  });

  test("cold start: missing stats or fewer than 5 buckets evaluates nothing and keeps the state", () => {
    for (const s of [null, undefined, stats(4)]) {
      const d = evaluateMetric(rule, INITIAL_STATE, { ts: T0, value: 100, eventId: "e", stats: s });
      expect(d).toEqual({ state: INITIAL_STATE, fire: null, resolve: false, skipped: "cold_start" });
    }
    expect(run(rule, [[0, 100, stats(5)]]).firedAt).toEqual([0]);
  });

  test("fires only when z exceeds k", () => {
    expect(
      run(rule, [
        [0, 26, stats(10)],
        [10, 14, stats(10)],
      ]).firedAt,
    ).toEqual([]);
    const d = run(rule, [[0, 12, stats(10, 20.1, 2.4)]]).decisions[0]!;
    expect(d.fire?.message).toBe("temp 12 is 3.38σ from the 30-minute mean 20.1");
    expect(d.fire?.details).toMatchObject({ mean: 20.1, stddev: 2.4, k: 3, buckets: 10 });
    expect(d.fire?.details.z).toBeCloseTo(8.1 / 2.4);
  });

  test("stddev 0: any difference from the mean triggers, the mean itself clears", () => {
    const flat = stats(10, 20, 0);
    expect(run(rule, [[0, 20, flat]]).firedAt).toEqual([]);
    const r = run(rule, [
      [0, 20.5, flat],
      [10, 20, flat],
    ]);
    expect(r.firedAt).toEqual([0]);
    expect(r.decisions[0]!.fire?.details.z).toBeNull();
    expect(r.decisions[0]!.fire?.message).toBe("temp 20.5 differs from the 30-minute mean 20, which did not vary");
    expect(r.state.active).toBe(false);
    expect(r.resolves).toBe(0);
  });

  test("stddev 0 with clear_k 0: only the mean itself clears, and resolves", () => {
    const strict = metricRule({ type: "deviation_from_mean", k: 3, window_minutes: 30, clear_k: 0 });
    const flat = stats(10, 20, 0);
    const r = run(strict, [
      [0, 21, flat],
      [10, 20, flat],
    ]);
    expect(r.decisions.map((d) => [d.state.active, d.resolve])).toEqual([
      [true, false],
      [false, true],
    ]);
  });

  test("clear_k: stays active between clear_k and k, resolves below clear_k", () => {
    const hyst = metricRule({ type: "deviation_from_mean", k: 3, window_minutes: 30, clear_k: 1 });
    const r = run(hyst, [
      [0, 28, stats(10)],
      [10, 24, stats(10)],
      [20, 21, stats(10)],
    ]);
    expect(r.firedAt).toEqual([0]);
    expect(r.decisions.map((d) => [d.state.active, d.resolve])).toEqual([
      [true, false],
      [true, false],
      [false, true],
    ]);
  });
});

describe("rate_of_change", () => {
  const rule = (direction: string, extra: Record<string, unknown> = {}) =>
    metricRule({ type: "rate_of_change", limit_per_minute: 5, direction, ...extra }, { cooldown_seconds: 0 });

  test("the first reading only records the value", () => {
    const d = evaluateMetric(rule("up"), INITIAL_STATE, { ts: T0, value: 20, eventId: "e" });
    expect(d).toEqual({
      state: { ...INITIAL_STATE, lastValue: 20, lastTs: T0 },
      fire: null,
      resolve: false,
      skipped: "no_previous",
    });
  });

  test("the rate is per minute of event time", () => {
    const d = run(rule("up"), [
      [0, 20],
      [10, 21.1],
    ]).decisions[1]!;
    expect(d.fire?.message).toBe("temp rose 6.6/min (limit 5/min)");
    expect(d.fire?.details.rate).toBeCloseTo(6.6);
    expect(
      run(rule("up"), [
        [0, 20],
        [60, 25],
      ]).firedAt,
    ).toEqual([]);
  });

  test.each([
    ["up", [60]],
    ["down", [120]],
    ["either", [60, 120]],
  ])("direction %s", (direction, expected) => {
    const r = run(rule(direction), [
      [0, 20],
      [60, 26],
      [120, 20],
    ]);
    expect(r.firedAt).toEqual(expected);
  });

  test("falling rates read as falls", () => {
    expect(
      run(rule("down"), [
        [0, 20],
        [60, 13.8],
      ]).decisions[1]!.fire?.message,
    ).toBe("temp fell 6.2/min (limit 5/min)");
  });

  test("clear_per_minute: stays active above it, resolves below it", () => {
    const r = run(rule("either", { clear_per_minute: 1 }), [
      [0, 20],
      [60, 26],
      [120, 29],
      [180, 29.5],
    ]);
    expect(r.firedAt).toEqual([60, 120]);
    expect(r.decisions.map((d) => d.resolve)).toEqual([false, false, false, true]);
    expect(r.state.active).toBe(false);
  });

  test("without a clear level it clears when no longer triggered, without resolving", () => {
    const r = run(rule("up"), [
      [0, 20],
      [60, 26],
      [120, 29],
    ]);
    expect(r.state.active).toBe(false);
    expect(r.resolves).toBe(0);
  });
});

describe("geometry", () => {
  test("haversine: one degree of latitude on the mean-radius sphere", () => {
    expect(haversineMeters({ lat: 0, lon: 0 }, { lat: 1, lon: 0 })).toBeCloseTo(111_195.08, 1);
    expect(haversineMeters({ lat: 52.52, lon: 13.405 }, { lat: 52.52, lon: 13.405 })).toBe(0);
  });

  test("ray casting handles concave polygons ([lat, lon] points)", () => {
    const ell: Array<[number, number]> = [
      [0, 0],
      [0, 2],
      [1, 2],
      [1, 1],
      [2, 1],
      [2, 0],
    ];
    expect(pointInPolygon({ lat: 0.5, lon: 1.5 }, ell)).toBe(true);
    expect(pointInPolygon({ lat: 1.5, lon: 0.5 }, ell)).toBe(true);
    expect(pointInPolygon({ lat: 1.5, lon: 1.5 }, ell)).toBe(false);
    for (const p of [
      { lat: 3, lon: 0.5 },
      { lat: -1, lon: 0.5 },
      { lat: 0.5, lon: -1 },
      { lat: 0.5, lon: 3 },
    ]) {
      expect(pointInPolygon(p, ell)).toBe(false);
    }
  });
});

describe("geofence", () => {
  const centre = { lat: 52.52, lon: 13.405 };
  const IN = centre;
  const OUT = { lat: 52.53, lon: 13.405 }; // ~1.1 km north
  const fence = (on: string, extra: Record<string, unknown> = {}) =>
    makeRule({
      condition: { type: "geofence", on, circle: { ...centre, radius_m: 500 } },
      cooldown_seconds: 0,
      ...extra,
    });

  function moves(rule: Rule, points: Array<[number, { lat: number; lon: number }]>) {
    let state = INITIAL_STATE;
    const decisions = points.map(([s, p]) => {
      const d = evaluatePosition(rule, state, { ts: sec(s), ...p, eventId: `p${s}` });
      state = d.state;
      return d;
    });
    return { state, decisions, fired: decisions.flatMap((d) => (d.fire ? [d.fire.message] : [])) };
  }

  test("the first position only records where the device is", () => {
    for (const p of [IN, OUT]) {
      const r = moves(fence("both"), [[0, p]]);
      expect(r.fired).toEqual([]);
      expect(r.state).toEqual({ ...INITIAL_STATE, inside: p === IN, lastTs: sec(0) });
    }
  });

  test.each([
    ["enter", ["entered geofence", "entered geofence"]],
    ["exit", ["exited geofence"]],
    ["both", ["entered geofence", "exited geofence", "entered geofence"]],
  ])("on %s", (on, expected) => {
    const r = moves(fence(on), [
      [0, OUT],
      [10, IN],
      [20, IN],
      [30, OUT],
      [40, OUT],
      [50, IN],
    ]);
    expect(r.fired).toEqual(expected);
    expect(r.decisions.every((d) => !d.resolve)).toBe(true);
  });

  test("fire details carry the distance and the event", () => {
    const d = moves(fence("enter"), [
      [0, OUT],
      [10, IN],
    ]).decisions[1]!;
    expect(d.fire).toMatchObject({ value: null, details: { event: "enter", distance_m: 0, radius_m: 500 } });
  });

  test("cooldown per (rule, device); for_seconds is ignored", () => {
    const rule = fence("both", { cooldown_seconds: 900, for_seconds: 3600 });
    const r = moves(rule, [
      [0, OUT],
      [10, IN],
      [20, OUT],
      [30, IN],
      [910, OUT],
    ]);
    expect(r.fired).toEqual(["entered geofence", "exited geofence"]);
  });

  test("stale positions are ignored", () => {
    const rule = fence("both");
    const { state } = moves(rule, [[100, OUT]]);
    expect(evaluatePosition(rule, state, { ts: sec(50), ...IN, eventId: "late" })).toEqual({
      state,
      fire: null,
      resolve: false,
      skipped: "stale",
    });
  });

  test("polygon fences", () => {
    const rule = makeRule({
      condition: {
        type: "geofence",
        on: "both",
        polygon: [
          [0, 0],
          [0, 1],
          [1, 1],
          [1, 0],
        ],
      },
      cooldown_seconds: 0,
    });
    const r = moves(rule, [
      [0, { lat: 2, lon: 0.5 }],
      [10, { lat: 0.5, lon: 0.5 }],
      [20, { lat: 0.5, lon: 1.5 }],
    ]);
    expect(r.fired).toEqual(["entered geofence", "exited geofence"]);
  });
});

describe("no_data", () => {
  const rule = makeRule({ condition: { type: "no_data", minutes: 10 } });
  const seen = T0;

  test("a device never seen does nothing", () => {
    expect(evaluateSilence(rule, INITIAL_STATE, null, T0 + 60 * MIN)).toEqual({
      state: INITIAL_STATE,
      fire: null,
      resolve: false,
      skipped: "not_applicable",
    });
  });

  test("nothing before the silence reaches the limit", () => {
    const d = evaluateSilence(rule, INITIAL_STATE, seen, seen + 10 * MIN - 1);
    expect(d).toEqual({ state: INITIAL_STATE, fire: null, resolve: false });
  });

  test("one alert per silence period, resolved when data returns, again on the next silence", () => {
    const first = evaluateSilence(rule, INITIAL_STATE, seen, seen + 10 * MIN);
    expect(first.fire).toEqual({
      value: null,
      message: "no data for 10 minutes",
      details: { lastSeen: seen, minutes: 10, silentMs: 10 * MIN, metric: null },
    });
    expect(first.state).toMatchObject({ active: true, lastTs: seen, lastAlertAt: seen + 10 * MIN });

    for (const now of [seen + 10 * MIN + 30_000, seen + 600 * MIN]) {
      expect(evaluateSilence(rule, first.state, seen, now)).toEqual({ state: first.state, fire: null, resolve: false });
    }

    const back = seen + 11 * MIN;
    const returned = evaluateSilence(rule, first.state, back, back);
    expect(returned).toMatchObject({ fire: null, resolve: true, state: { active: false } });

    // A new silence period alerts even inside the 15-minute default cooldown.
    const again = evaluateSilence(rule, returned.state, back, back + 10 * MIN);
    expect(again.fire?.details.lastSeen).toBe(back);
    expect(again.state.lastAlertAt! - first.state.lastAlertAt!).toBeLessThan(rule.cooldown_seconds * 1000);
  });
});
