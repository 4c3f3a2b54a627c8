/**
 * Rule evaluation, pure: (rule, state, observation) -> (new state, decision). No I/O, no clock.
 * All times are reading (event) times in epoch ms, so evaluation is deterministic and replayable.
 *
 * IMPLEMENTATION PENDING (helper): see the contract below.
 */
import type { Rule } from "./schema.ts";

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
}

export const INITIAL_STATE: RuleState = { active: false, activeSince: null, lastAlertAt: null, lastValue: null, lastTs: null, inside: null };

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
  skipped?: "stale" | "cold_start" | "no_previous" | "not_applicable";
}
