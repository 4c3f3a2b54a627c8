/** Late data from buffered uploads (decision 0460): the pure part — lateness bound, runUnits, no_data on arrival. */
import { describe, expect, test } from "bun:test";
import type { CommittedBatch, SeriesPoint } from "../../src/core/committed.ts";
import { evaluateArrival, evaluateSilence, INITIAL_STATE, type RuleState } from "../../src/core/rules/engine.ts";
import { isLate, latenessBoundMs } from "../../src/core/rules/lateness.ts";
import { ruleInputSchema, type Rule } from "../../src/core/rules/schema.ts";
import { planUnits, runUnits, stateKey } from "../../src/evaluator/plan.ts";

const MIN = 60_000;
const NOW = Date.UTC(2026, 11, 1, 12);
const BOUND = 10 * MIN;

const makeRule = (input: Record<string, unknown>, id = "rule-1"): Rule => ({
  id,
  tenant: "acme",
  ...ruleInputSchema.parse({ name: "r", ...input }),
});
const hot = (extra: Record<string, unknown> = {}) =>
  makeRule({ metric: "temp", condition: { type: "above_threshold", threshold: 30 }, cooldown_seconds: 0, ...extra });

const point = (ts: number, value: number, receivedAt: number, metric = "temp"): SeriesPoint => ({
  deviceId: "phone-1",
  metric,
  ts,
  value,
  eventId: `e-${metric}-${ts}`,
  receivedAt,
});
const batch = (series: SeriesPoint[]): CommittedBatch => ({
  tenant: "acme",
  series,
  positions: [],
  devices: [
    {
      deviceId: "phone-1",
      lastTs: Math.max(...series.map((s) => s.ts)),
      receivedAt: Math.max(...series.map((s) => s.receivedAt)),
    },
  ],
});

/** Evaluates batches in order, threading rule state as the evaluator does through rule_state. */
function evaluate(rules: Rule[], batches: CommittedBatch[], maxLatenessMs: number) {
  let states = new Map<string, RuleState>();
  const fired: number[] = [];
  let resolves = 0;
  let late = 0;
  for (const b of batches) {
    const outcome = runUnits(planUnits(b, rules), states, () => null, INITIAL_STATE, maxLatenessMs);
    states = new Map(states);
    for (const [k, s] of outcome.states) states.set(k, s.state);
    fired.push(...outcome.open.map((a) => a.triggeredAt));
    resolves += outcome.resolve.length;
    late += outcome.late;
  }
  return { states, fired, resolves, late };
}

describe("the lateness bound", () => {
  test("late = received more than the bound after the reading's time; the rule's own bound wins; 0 = none", () => {
    const rule = hot();
    expect(latenessBoundMs(rule, BOUND)).toBe(BOUND);
    expect(isLate(rule, BOUND, NOW - BOUND, NOW)).toBe(false);
    expect(isLate(rule, BOUND, NOW - BOUND - 1, NOW)).toBe(true);
    expect(isLate(rule, 0, NOW - 86_400_000, NOW)).toBe(false);
    const own = hot({ max_lateness_seconds: 3_600 });
    expect(latenessBoundMs(own, BOUND)).toBe(3_600_000);
    expect(isLate(own, BOUND, NOW - 30 * MIN, NOW)).toBe(false);
    expect(isLate(hot({ max_lateness_seconds: 0 }), BOUND, NOW - 86_400_000, NOW)).toBe(false);
    // A clock ahead of the server is never late.
    expect(isLate(rule, BOUND, NOW + 5 * MIN, NOW)).toBe(false);
  });

  test("max_lateness_seconds is a whole number of seconds from 0 to a year", () => {
    for (const bad of [-1, 1.5, 86_400 * 366, "600"])
      expect(
        ruleInputSchema.safeParse({
          name: "r",
          metric: "t",
          condition: { type: "above_threshold", threshold: 1 },
          max_lateness_seconds: bad,
        }).success,
      ).toBe(false);
    expect(hot({ max_lateness_seconds: 0 }).max_lateness_seconds).toBe(0);
    expect(hot().max_lateness_seconds).toBeUndefined();
  });
});

describe("a buffered burst through the rules", () => {
  const outage = NOW - 3 * 60 * MIN;
  const live = [
    batch([point(outage - 2 * MIN, 20, outage - 2 * MIN)]),
    batch([point(outage - MIN, 21, outage - MIN + 300)]),
  ];
  // Three hours of old points, uploaded in order at reconnection, crossing 30 every 10 minutes.
  const burst = Array.from({ length: 18 }, (_, i) =>
    batch([point(outage + i * 10 * MIN, i % 2 ? 35 : 25, NOW + i * 50)]),
  );
  const afterwards = batch([point(NOW + 2_000, 36, NOW + 2_100)]);

  test("old points are not evaluated: no alert, the state as it was before the outage; the next live point is", () => {
    const rule = hot();
    const before = evaluate([rule], live, BOUND);
    const during = evaluate([rule], [...live, ...burst], BOUND);
    expect(during.fired).toEqual([]);
    expect(during.late).toBe(18);
    expect(during.states.get(stateKey(rule.id, "phone-1"))).toEqual(before.states.get(stateKey(rule.id, "phone-1"))!);
    const after = evaluate([rule], [...live, ...burst, afterwards], BOUND);
    expect(after.fired).toEqual([NOW + 2_000]);
  });

  test("without a bound the same burst flaps: one alert per crossing (what the bound prevents)", () => {
    const { fired, late } = evaluate([hot()], [...live, ...burst], 0);
    expect(late).toBe(0);
    expect(fired).toHaveLength(9);
  });

  test("a rule with a longer bound of its own evaluates the points inside it", () => {
    const rule = hot({ max_lateness_seconds: 4 * 3_600 });
    expect(evaluate([rule], [...live, ...burst], BOUND).fired).toHaveLength(9);
  });

  test("a late point at or before the last evaluated one stays stale once the bound is off", () => {
    const rule = hot();
    const r = evaluate([rule], [...live, afterwards, batch([point(NOW - MIN, 99, NOW + 3_000)])], 0);
    expect(r.fired).toEqual([NOW + 2_000]);
  });
});

describe("no_data keyed on arrival", () => {
  const deviceRule = makeRule({ condition: { type: "no_data", minutes: 30 } }, "nd-device");
  const metricRule = makeRule({ metric: "temp", condition: { type: "no_data", minutes: 30 } }, "nd-metric");
  const old = batch([point(NOW - 3 * 60 * MIN, 20, NOW)]);

  test("an arrival unit carries the receive time, not the readings' time", () => {
    const units = planUnits(old, [deviceRule, metricRule]);
    expect(units.map((u) => (u.kind === "arrival" ? u.arrivedAt : null))).toEqual([NOW, NOW]);
    // A metric rule counts only batches with its metric.
    expect(planUnits(batch([point(NOW, 1, NOW, "hum")]), [metricRule])).toEqual([]);
  });

  test("a metric rule records the arrival; an active silence resolves when data arrives, old points or not", () => {
    const silent: RuleState = { ...INITIAL_STATE, active: true, activeSince: NOW - MIN, lastTs: NOW - 31 * MIN };
    const d = evaluateArrival(metricRule, silent, NOW, true);
    expect(d).toMatchObject({ resolve: true, fire: null, state: { active: false, lastArrival: NOW } });
    const quiet = evaluateArrival(deviceRule, INITIAL_STATE, NOW, false);
    expect(quiet.state).toBe(INITIAL_STATE);
    // Arrivals only move forward.
    expect(evaluateArrival(metricRule, { ...INITIAL_STATE, lastArrival: NOW }, NOW - 1, true).state.lastArrival).toBe(
      NOW,
    );
    const r = evaluate([metricRule], [old], BOUND);
    expect(r.states.get(stateKey(metricRule.id, "phone-1"))?.lastArrival).toBe(NOW);
  });

  test("a silence alerted while lastSeen was a reading time does not fire again when it becomes the arrival time", () => {
    const alerted = evaluateSilence(deviceRule, INITIAL_STATE, NOW - 40 * MIN, NOW - 5 * MIN).state;
    expect(alerted.active).toBe(true);
    // Same silence, now measured from the arrival (a few seconds after the reading's time).
    expect(evaluateSilence(deviceRule, alerted, NOW - 40 * MIN + 3_000, NOW).fire).toBeNull();
  });

  test("the sweep just after a burst of hours-old points sees no silence (arrival), where event time would", () => {
    const arrived = evaluateSilence(deviceRule, INITIAL_STATE, NOW, NOW + MIN);
    expect(arrived.fire).toBeNull();
    const byEventTime = evaluateSilence(deviceRule, INITIAL_STATE, NOW - 3 * 60 * MIN, NOW + MIN);
    expect(byEventTime.fire).not.toBeNull();
  });
});
