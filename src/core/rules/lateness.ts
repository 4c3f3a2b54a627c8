/**
 * Late data (decision 0460), pure. A reading is *late* for a rule when ingest received it more than
 * the rule's lateness bound after the reading's own time: a phone or gateway uploading what it
 * buffered while offline. Late readings are stored, rolled up and shown like any other, but
 * threshold, deviation, rate and geofence rules do not evaluate them: they describe the past, and
 * alerting on them would fire, flap and resolve as if the past were happening now.
 *
 * The bound is the rule's `max_lateness_seconds`, else the server's default; 0 means no bound.
 * Readings timestamped after their arrival (a clock ahead) are never late.
 */
import type { Rule } from "./schema.ts";

/** The rule's bound in ms; 0 = none. */
export function latenessBoundMs(rule: Pick<Rule, "max_lateness_seconds">, defaultMs: number): number {
  return rule.max_lateness_seconds !== undefined ? rule.max_lateness_seconds * 1000 : defaultMs;
}

export function isLate(
  rule: Pick<Rule, "max_lateness_seconds">,
  defaultMs: number,
  ts: number,
  receivedAt: number,
): boolean {
  const bound = latenessBoundMs(rule, defaultMs);
  return bound > 0 && receivedAt - ts > bound;
}
