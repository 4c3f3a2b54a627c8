/**
 * Deadman rules (no_data) on a timer: a device (or one of its metrics) silent for N minutes fires
 * one alert per silence period, even when nothing arrives to trigger an evaluation.
 * Silence is measured from when data last *arrived*, not from the readings' own times (decision
 * 0460): a device that uploads hours of buffered points is talking now. Device silence comes from
 * devices.last_received_at; metric silence from the arrival the evaluator recorded in rule_state
 * (last_arrival), or, for a series it has not seen arrive under this rule yet, the newest 1-minute
 * rollup of that metric. Series are looked for in the rollups of the last day or 4×N minutes,
 * whichever is longer: a series silent for longer has already fired, and its active state keeps
 * it from firing again. `now` is the caller's clock (the timer passes the wall clock).
 */
import { evaluateSilence, INITIAL_STATE } from "../core/rules/engine.ts";
import type { Rule } from "../core/rules/schema.ts";
import type { Sql } from "../db/client.ts";
import { newOutcome, record, stateKey, type Outcome } from "./plan.ts";
import { loadStates } from "./store.ts";

async function lastSeen(
  sql: Sql,
  rule: Rule,
  minutes: number,
  now: number,
): Promise<Array<{ deviceId: string; lastSeen: number }>> {
  const devices = rule.devices ?? null;
  const at = new Date(now).toISOString();
  const rows = rule.metric
    ? await sql`
        SELECT r.device_id, coalesce(max(s.last_arrival), max(r.bucket) + interval '59.999 seconds') AS last_seen
        FROM readings_1m r
        LEFT JOIN rule_state s ON s.rule_id = ${rule.id} AND s.device_id = r.device_id
        WHERE r.tenant = ${rule.tenant} AND r.metric = ${rule.metric}
          AND r.bucket >= ${at}::timestamptz - make_interval(mins => ${Math.max(minutes * 4, 1_440)})
          AND (${devices}::text[] IS NULL OR r.device_id = ANY(${devices}::text[]))
        GROUP BY r.device_id`
    : await sql`
        SELECT d.device_id, d.last_received_at AS last_seen FROM devices d
        LEFT JOIN rule_state s ON s.rule_id = ${rule.id} AND s.device_id = d.device_id
        WHERE d.tenant = ${rule.tenant}
          AND (d.last_received_at <= ${at}::timestamptz - make_interval(mins => ${minutes}) OR s.active)
          AND (${devices}::text[] IS NULL OR d.device_id = ANY(${devices}::text[]))`;
  return rows.map((r) => ({ deviceId: r.device_id as string, lastSeen: (r.last_seen as Date).getTime() }));
}

/** Evaluates every no_data rule against wall-clock `now`; returns one outcome per tenant. */
export async function sweepSilence(
  sql: Sql,
  rulesByTenant: Map<string, Rule[]>,
  now: number,
): Promise<Map<string, Outcome>> {
  const outcomes = new Map<string, Outcome>();
  for (const [tenant, rules] of rulesByTenant) {
    const outcome = newOutcome();
    for (const rule of rules) {
      if (rule.condition.type !== "no_data") continue;
      const seen = await lastSeen(sql, rule, rule.condition.minutes, now);
      const states = await loadStates(
        sql,
        seen.map((s) => ({ ruleId: rule.id, deviceId: s.deviceId })),
      );
      for (const s of seen) {
        const before = states.get(stateKey(rule.id, s.deviceId)) ?? INITIAL_STATE;
        const d = evaluateSilence(rule, before, s.lastSeen, now);
        // One alert per silence period: the trigger time is the last reading's time.
        record(outcome, rule, s.deviceId, before, d, s.lastSeen, null);
      }
    }
    if (outcome.open.length || outcome.resolve.length || outcome.states.size) outcomes.set(tenant, outcome);
  }
  return outcomes;
}
