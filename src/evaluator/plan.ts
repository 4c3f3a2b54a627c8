/**
 * Pure planning around the rule engine: which (rule, device) pairs a committed batch touches, and
 * running the engine over them in time order. No I/O: the caller loads states and window stats
 * and persists what comes out.
 */
import type { CommittedBatch, PositionPoint, SeriesPoint } from "../core/committed.ts";
import { uuidv5 } from "../core/event-id.ts";
import {
  evaluateArrival,
  evaluateMetric,
  evaluatePosition,
  type Decision,
  type Fire,
  type RuleState,
  type WindowStats,
} from "../core/rules/engine.ts";
import { isLate } from "../core/rules/lateness.ts";
import { ruleApplies, type Rule } from "../core/rules/schema.ts";

export type Unit =
  | { kind: "metric"; rule: Rule; deviceId: string; point: SeriesPoint }
  | { kind: "position"; rule: Rule; deviceId: string; point: PositionPoint }
  /** no_data: data of the device (or the rule's metric) arrived at `arrivedAt` (receive time). */
  | { kind: "arrival"; rule: Rule; deviceId: string; arrivedAt: number };

export const stateKey = (ruleId: string, deviceId: string) => `${ruleId}\u0000${deviceId}`;

/** Window for deviation stats: the `window_minutes` whole minutes before the reading's minute. */
export function statsWindow(rule: Rule, ts: number): { from: number; to: number } | null {
  if (rule.condition.type !== "deviation_from_mean") return null;
  const to = Math.floor(ts / 60_000) * 60_000;
  return { from: to - rule.condition.window_minutes * 60_000, to };
}

export function planUnits(batch: CommittedBatch, rules: readonly Rule[]): Unit[] {
  const units: Unit[] = [];
  for (const rule of rules) {
    const type = rule.condition.type;
    if (type === "geofence") {
      for (const p of batch.positions)
        if (ruleApplies(rule, p.deviceId)) units.push({ kind: "position", rule, deviceId: p.deviceId, point: p });
    } else if (type === "no_data") {
      for (const d of batch.devices) {
        const points = rule.metric
          ? batch.series.filter((s) => s.deviceId === d.deviceId && s.metric === rule.metric)
          : null;
        const arrivedAt = points ? Math.max(...points.map((p) => p.receivedAt)) : d.receivedAt;
        if ((points === null || points.length > 0) && ruleApplies(rule, d.deviceId))
          units.push({ kind: "arrival", rule, deviceId: d.deviceId, arrivedAt });
      }
    } else {
      for (const s of batch.series)
        if (ruleApplies(rule, s.deviceId, s.metric))
          units.push({ kind: "metric", rule, deviceId: s.deviceId, point: s });
    }
  }
  return units;
}

export interface AlertToOpen {
  id: string;
  rule: Rule;
  deviceId: string;
  triggeredAt: number;
  eventId: string | null;
  fire: Fire;
}

export interface Outcome {
  /** States that changed, by stateKey. */
  states: Map<string, { rule: Rule; deviceId: string; state: RuleState }>;
  open: AlertToOpen[];
  /** (rule, device) pairs whose open alerts resolve automatically. */
  resolve: Array<{ rule: Rule; deviceId: string }>;
  skipped: number;
  /** Readings not evaluated because they arrived later than their rule's lateness bound. */
  late: number;
}

/** Deterministic alert id: the same rule, device and trigger time always name the same alert. */
export function alertId(ruleId: string, deviceId: string, triggeredAt: number): string {
  return uuidv5(`alert|${ruleId}|${deviceId}|${triggeredAt}`);
}

export function newOutcome(): Outcome {
  return { states: new Map(), open: [], resolve: [], skipped: 0, late: 0 };
}

/** Applies one decision to the outcome; `eventId`/`at` identify the trigger. */
export function record(
  outcome: Outcome,
  rule: Rule,
  deviceId: string,
  before: RuleState,
  d: Decision,
  at: number,
  eventId: string | null,
): void {
  if (d.skipped) outcome.skipped++;
  if (d.state !== before) outcome.states.set(stateKey(rule.id, deviceId), { rule, deviceId, state: d.state });
  if (d.fire)
    outcome.open.push({ id: alertId(rule.id, deviceId, at), rule, deviceId, triggeredAt: at, eventId, fire: d.fire });
  if (d.resolve) outcome.resolve.push({ rule, deviceId });
}

/**
 * Runs the engine over the units, per (rule, device) in time order, threading state through.
 * Readings later than their rule's lateness bound (`maxLatenessMs` unless the rule sets its own)
 * are counted in `late` and change nothing.
 */
export function runUnits(
  units: readonly Unit[],
  states: ReadonlyMap<string, RuleState>,
  stats: (u: Unit) => WindowStats | null,
  initial: RuleState,
  maxLatenessMs = 0,
): Outcome {
  const outcome = newOutcome();
  const current = new Map(states);
  const ordered = [...units].sort((a, b) => unitTime(a) - unitTime(b));
  for (const u of ordered) {
    if (u.kind !== "arrival" && isLate(u.rule, maxLatenessMs, u.point.ts, u.point.receivedAt)) {
      outcome.late++;
      continue;
    }
    const key = stateKey(u.rule.id, u.deviceId);
    const before = current.get(key) ?? initial;
    let d: Decision;
    if (u.kind === "metric")
      d = evaluateMetric(u.rule, before, {
        ts: u.point.ts,
        value: u.point.value,
        eventId: u.point.eventId,
        stats: stats(u),
      });
    else if (u.kind === "position") d = evaluatePosition(u.rule, before, u.point);
    else d = evaluateArrival(u.rule, before, u.arrivedAt, u.rule.metric !== undefined);
    current.set(key, d.state);
    const at = u.kind === "arrival" ? u.arrivedAt : u.point.ts;
    record(outcome, u.rule, u.deviceId, before, d, at, u.kind === "arrival" ? null : u.point.eventId);
  }
  return outcome;
}

function unitTime(u: Unit): number {
  return u.kind === "arrival" ? u.arrivedAt : u.point.ts;
}
