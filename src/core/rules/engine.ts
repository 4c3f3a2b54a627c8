/**
 * Rule evaluation, pure: (rule, state, observation) -> (new state, decision). No I/O, no clock.
 * All times are reading (event) times in epoch ms, so evaluation is deterministic and replayable;
 * only no_data takes a wall-clock `now`, from its caller.
 *
 * Semantics:
 * - Readings are evaluated in time order per (rule, device): one at or before `state.lastTs` is
 *   "stale" and ignored (state returned as is). This applies to positions too.
 * - Every metric condition has a trigger test and a clear test. Without an explicit clear level
 *   (clear, clear_k, clear_per_minute) "clear" is simply "not triggered"; with one, values between
 *   the clear level and the trigger level keep the current state (hysteresis).
 *     above_threshold: trigger value > threshold; clear value < clear (else value <= threshold).
 *     below_threshold: trigger value < threshold; clear value > clear (else value >= threshold).
 *     deviation_from_mean: z = |value - mean| / stddev over the window before the reading; trigger
 *       z > k; clear z < clear_k (else z <= k). stddev 0: any difference from the mean triggers and
 *       only the mean itself clears. Missing stats or fewer than 5 one-minute buckets: "cold_start",
 *       no evaluation at all and state unchanged (a mean over 2 points alerts on everything).
 *     rate_of_change: rate = change per minute since the previous reading; trigger rate > limit
 *       (up), rate < -limit (down), |rate| > limit (either); clear when the same directed rate is
 *       below clear_per_minute (else not triggered). The first reading only records: "no_previous".
 * - State machine: inactive + trigger -> active since the reading. Active + clear -> inactive, and
 *   the open alerts resolve only when the rule has an explicit clear level; otherwise they stay open
 *   until a person resolves them. While active (even between clear and trigger levels) an alert fires
 *   once the condition has held for_seconds and the cooldown since the last alert of this
 *   (rule, device) has passed: a stuck sensor re-alerts once per cooldown, and cooldown 0 alerts on
 *   every active reading.
 * - Geofence: the first position only records whether the device is inside. outside->inside is
 *   "enter", inside->outside "exit"; it fires when it matches `on` and the cooldown allows.
 *   for_seconds is ignored (a crossing is an instant) and alerts never auto-resolve. Polygons are
 *   planar in degrees (lat as y, lon as x): fine for fences under a few hundred km that do not
 *   cross the antimeridian; points exactly on an edge may fall either way.
 * - no_data: evaluated against `now`. A series never seen does nothing. Silent when
 *   now - lastSeen >= minutes: fires once per silence period (the period is named by its lastSeen,
 *   kept in state.lastTs), so cooldown does not apply. When data comes back the alert resolves.
 *   lastSeen is when data last *arrived* (ingest's receive time), not the readings' own times, so a
 *   buffered upload of old points neither looks like silence nor prolongs one (decision 0460).
 * - Late readings (received more than the rule's lateness bound after their time: see lateness.ts)
 *   are filtered out by the caller before these functions; they never change a rule's state.
 */
import type { Condition, Rule } from "./schema.ts";

export interface RuleState {
  /** The condition currently holds (from trigger until clear). */
  active: boolean;
  /** Event time at which it started to hold (for `for_seconds`). */
  activeSince: number | null;
  /** Event time of the last alert fired for this (rule, device): cooldown. For no_data: see evaluateSilence. */
  lastAlertAt: number | null;
  /** Last observed value and its time (rate_of_change; stale-reading detection). */
  lastValue: number | null;
  lastTs: number | null;
  /** Geofence: whether the device was inside at lastTs; null = unknown. */
  inside: boolean | null;
  /** Metric no_data: when a reading of the metric last arrived (receive time); null = not yet. */
  lastArrival: number | null;
}

export const INITIAL_STATE: RuleState = {
  active: false,
  activeSince: null,
  lastAlertAt: null,
  lastValue: null,
  lastTs: null,
  inside: null,
  lastArrival: null,
};

/** Rollup statistics over the rule's window before the reading (buckets = 1-minute buckets with data). */
export interface WindowStats {
  buckets: number;
  count: number;
  mean: number;
  stddev: number;
}

export interface MetricObservation {
  ts: number;
  value: number;
  eventId: string;
  /** Required for deviation_from_mean (null/undefined = no data in the window). */
  stats?: WindowStats | null;
}

export interface PositionObservation {
  ts: number;
  lat: number;
  lon: number;
  eventId: string;
}

export interface Fire {
  value: number | null;
  message: string;
  details: Record<string, unknown>;
}

export interface Decision {
  state: RuleState;
  /** Open an alert triggered at the observation's time. */
  fire: Fire | null;
  /** The condition cleared and the rule asks for automatic resolution: resolve this (rule, device)'s open alerts. */
  resolve: boolean;
  /** Why nothing was evaluated, when nothing was. */
  skipped?: "stale" | "late" | "cold_start" | "no_previous" | "not_applicable";
}

export const MIN_BUCKETS = 5;
export const EARTH_RADIUS_M = 6_371_008.8;

type MetricCondition = Extract<
  Condition,
  { type: "above_threshold" | "below_threshold" | "deviation_from_mean" | "rate_of_change" }
>;

/** One reading judged against a condition. */
interface Check {
  trigger: boolean;
  clear: boolean;
  hasClearLevel: boolean;
  message: string;
  details: Record<string, unknown>;
}

const skip = (state: RuleState, skipped: NonNullable<Decision["skipped"]>): Decision => ({
  state,
  fire: null,
  resolve: false,
  skipped,
});
const isStale = (state: RuleState, ts: number) => state.lastTs !== null && ts <= state.lastTs;
const cooldownAllows = (rule: Rule, state: RuleState, ts: number) =>
  state.lastAlertAt === null || ts - state.lastAlertAt >= rule.cooldown_seconds * 1000;
/** Derived numbers (means, z, rates) are rounded for messages; raw values are shown as sent. */
const fmt = (n: number) => (Math.abs(n) >= 1000 ? String(Math.round(n)) : String(Number(n.toPrecision(3))));

export function evaluateMetric(rule: Rule, state: RuleState, obs: MetricObservation): Decision {
  const c = rule.condition;
  if (c.type === "geofence" || c.type === "no_data") return skip(state, "not_applicable");
  if (isStale(state, obs.ts)) return skip(state, "stale");
  const check = checkMetric(c, rule.metric ?? "value", state, obs);
  const recorded: RuleState = { ...state, lastValue: obs.value, lastTs: obs.ts };
  if (check === "cold_start") return skip(state, "cold_start");
  if (check === "no_previous") return skip(recorded, "no_previous");
  return step(rule, recorded, obs, check);
}

function checkMetric(
  c: MetricCondition,
  metric: string,
  prev: RuleState,
  obs: MetricObservation,
): Check | "cold_start" | "no_previous" {
  switch (c.type) {
    case "above_threshold":
      return checkThreshold(metric, obs.value, c.threshold, c.clear, 1);
    case "below_threshold":
      return checkThreshold(metric, obs.value, c.threshold, c.clear, -1);
    case "deviation_from_mean":
      return obs.stats && obs.stats.buckets >= MIN_BUCKETS
        ? checkDeviation(c, metric, obs.value, obs.stats)
        : "cold_start";
    case "rate_of_change":
      return prev.lastValue !== null && prev.lastTs !== null
        ? checkRate(c, metric, prev.lastValue, prev.lastTs, obs)
        : "no_previous";
  }
}

/** sign 1 = above_threshold, -1 = below_threshold: comparing sign·x turns "below" into "above". */
function checkThreshold(
  metric: string,
  value: number,
  threshold: number,
  clear: number | undefined,
  sign: 1 | -1,
): Check {
  const trigger = sign * value > sign * threshold;
  const word = sign === 1 ? "above" : "below";
  const message =
    trigger || clear === undefined
      ? `${metric} ${value} is ${word} ${threshold}`
      : `${metric} ${value} is still ${word} the clear level ${clear} (threshold ${threshold})`;
  return {
    trigger,
    clear: clear === undefined ? !trigger : sign * value < sign * clear,
    hasClearLevel: clear !== undefined,
    message,
    details: { threshold, clear: clear ?? null },
  };
}

function checkDeviation(
  c: Extract<Condition, { type: "deviation_from_mean" }>,
  metric: string,
  value: number,
  s: WindowStats,
): Check {
  // A flat window has no spread: any difference is infinitely unusual, and only the mean itself is normal.
  const z = s.stddev === 0 ? (value === s.mean ? 0 : Infinity) : Math.abs(value - s.mean) / s.stddev;
  const clear = s.stddev === 0 ? z === 0 : c.clear_k !== undefined ? z < c.clear_k : z <= c.k;
  const window = `the ${c.window_minutes}-minute mean ${fmt(s.mean)}`;
  return {
    trigger: z > c.k,
    clear,
    hasClearLevel: c.clear_k !== undefined,
    message:
      z === Infinity
        ? `${metric} ${value} differs from ${window}, which did not vary`
        : `${metric} ${value} is ${fmt(z)}σ from ${window}`,
    details: {
      mean: s.mean,
      stddev: s.stddev,
      z: Number.isFinite(z) ? z : null,
      k: c.k,
      clear_k: c.clear_k ?? null,
      buckets: s.buckets,
      count: s.count,
    },
  };
}

function checkRate(
  c: Extract<Condition, { type: "rate_of_change" }>,
  metric: string,
  lastValue: number,
  lastTs: number,
  obs: MetricObservation,
): Check {
  const rate = (obs.value - lastValue) / ((obs.ts - lastTs) / 60_000);
  // The rate in the rule's direction: positive means "towards the limit".
  const directed = c.direction === "up" ? rate : c.direction === "down" ? -rate : Math.abs(rate);
  const limit = c.limit_per_minute;
  return {
    trigger: directed > limit,
    clear: c.clear_per_minute !== undefined ? directed < c.clear_per_minute : directed <= limit,
    hasClearLevel: c.clear_per_minute !== undefined,
    message: `${metric} ${rate < 0 ? "fell" : "rose"} ${fmt(Math.abs(rate))}/min (limit ${limit}/min)`,
    details: {
      rate,
      previous: lastValue,
      previousTs: lastTs,
      limit_per_minute: limit,
      clear_per_minute: c.clear_per_minute ?? null,
      direction: c.direction,
    },
  };
}

/** The state machine shared by metric rules; `state` already records the reading. */
function step(rule: Rule, state: RuleState, obs: MetricObservation, check: Check): Decision {
  if (state.active && check.clear)
    return { state: { ...state, active: false, activeSince: null }, fire: null, resolve: check.hasClearLevel };
  if (!state.active && !check.trigger) return { state, fire: null, resolve: false };
  const active: RuleState = state.active ? state : { ...state, active: true, activeSince: obs.ts };
  const held = obs.ts - (active.activeSince ?? obs.ts) >= rule.for_seconds * 1000;
  if (!held || !cooldownAllows(rule, active, obs.ts)) return { state: active, fire: null, resolve: false };
  const fire: Fire = { value: obs.value, message: check.message, details: { ...check.details, value: obs.value } };
  return { state: { ...active, lastAlertAt: obs.ts }, fire, resolve: false };
}

export interface LatLon {
  lat: number;
  lon: number;
}

const rad = (deg: number) => (deg * Math.PI) / 180;

/** Great-circle distance on a spherical Earth (mean radius). */
export function haversineMeters(a: LatLon, b: LatLon): number {
  const h =
    Math.sin(rad(b.lat - a.lat) / 2) ** 2 +
    Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(rad(b.lon - a.lon) / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Ray casting with points as [lat, lon], planar in degrees (see the header). */
export function pointInPolygon(p: LatLon, polygon: ReadonlyArray<readonly [number, number]>): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [yi, xi] = polygon[i]!;
    const [yj, xj] = polygon[j]!;
    if (yi > p.lat !== yj > p.lat && p.lon < ((xj - xi) * (p.lat - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function locate(
  c: Extract<Condition, { type: "geofence" }>,
  pos: LatLon,
): { inside: boolean; details: Record<string, unknown> } {
  if (c.circle) {
    const distance = haversineMeters(c.circle, pos);
    return { inside: distance <= c.circle.radius_m, details: { distance_m: distance, radius_m: c.circle.radius_m } };
  }
  return { inside: pointInPolygon(pos, c.polygon ?? []), details: {} };
}

export function evaluatePosition(rule: Rule, state: RuleState, pos: PositionObservation): Decision {
  const c = rule.condition;
  if (c.type !== "geofence") return skip(state, "not_applicable");
  if (isStale(state, pos.ts)) return skip(state, "stale");
  const { inside, details } = locate(c, pos);
  const recorded: RuleState = { ...state, inside, lastTs: pos.ts };
  if (state.inside === null || state.inside === inside) return { state: recorded, fire: null, resolve: false };
  const event = inside ? "enter" : "exit";
  if ((c.on !== "both" && c.on !== event) || !cooldownAllows(rule, state, pos.ts))
    return { state: recorded, fire: null, resolve: false };
  const fire: Fire = {
    value: null,
    message: inside ? "entered geofence" : "exited geofence",
    details: { ...details, event, lat: pos.lat, lon: pos.lon },
  };
  return { state: { ...recorded, lastAlertAt: pos.ts }, fire, resolve: false };
}

/** no_data on a timer: `lastSeen` is the last reading time of the device (or of the rule's metric), null if never seen. */
export function evaluateSilence(rule: Rule, state: RuleState, lastSeen: number | null, now: number): Decision {
  const c = rule.condition;
  if (c.type !== "no_data" || lastSeen === null) return skip(state, "not_applicable");
  const silent = now - lastSeen >= c.minutes * 60_000;
  if (!silent) {
    if (!state.active) return { state, fire: null, resolve: false };
    return { state: { ...state, active: false, activeSince: null }, fire: null, resolve: true };
  }
  // Already alerted: this silence (named by its lastSeen), or one still active, i.e. no arrival
  // has ended it yet (also a silence alerted before lastSeen meant arrival time: decision 0460).
  if (state.active || state.lastTs === lastSeen) return { state, fire: null, resolve: false };
  const fire: Fire = {
    value: null,
    message: `no data for ${c.minutes} minute${c.minutes === 1 ? "" : "s"}`,
    details: { lastSeen, minutes: c.minutes, silentMs: now - lastSeen, metric: rule.metric ?? null },
  };
  return {
    state: { ...state, active: true, activeSince: now, lastTs: lastSeen, lastAlertAt: now },
    fire,
    resolve: false,
  };
}

/**
 * no_data when data arrives (at `arrivedAt`, ingest's receive time, whatever the readings' own
 * times): an active silence ends and its alert resolves. With `track` the arrival is recorded in
 * the state (metric rules: the sweep reads it; device rules read devices.last_received_at).
 */
export function evaluateArrival(rule: Rule, state: RuleState, arrivedAt: number, track: boolean): Decision {
  if (rule.condition.type !== "no_data") return skip(state, "not_applicable");
  const newer = track && (state.lastArrival === null || arrivedAt > state.lastArrival);
  const next = newer ? { ...state, lastArrival: arrivedAt } : state;
  if (!state.active) return { state: next, fire: null, resolve: false };
  return { state: { ...next, active: false, activeSince: null }, fire: null, resolve: true };
}
