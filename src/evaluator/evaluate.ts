/**
 * One committed batch through the rules: plan, load state and window stats (one query each),
 * run the pure engine, persist the outcome. Used by the evaluator role (and by replays).
 */
import type { CommittedBatch } from "../core/committed.ts";
import { INITIAL_STATE, type WindowStats } from "../core/rules/engine.ts";
import { isLate } from "../core/rules/lateness.ts";
import type { Rule } from "../core/rules/schema.ts";
import type { Sql } from "../db/client.ts";
import { metrics } from "../lib/metrics.ts";
import type { Fence } from "./fence.ts";
import { planUnits, runUnits, statsWindow, type Unit } from "./plan.ts";
import { commitOutcome, loadStates, loadWindowStats } from "./store.ts";

export interface BatchResult {
  units: number;
  opened: number;
  resolved: number;
}

/**
 * With `dryRun`, nothing is written and `opened` counts the alerts that would be new.
 * `maxLatenessMs`: the default lateness bound (TELEMETRY_ALERT_MAX_LATENESS; 0 = none).
 * `fence`: the evaluation partition the event came from (see fence.ts).
 */
export async function evaluateBatch(
  sql: Sql,
  rules: readonly Rule[],
  batch: CommittedBatch,
  opts: { dryRun?: boolean; maxLatenessMs?: number; fence?: Fence } = {},
): Promise<BatchResult> {
  const units = planUnits(batch, rules);
  if (units.length === 0) return { units: 0, opened: 0, resolved: 0 };
  const pairs = new Map(
    units.map((u) => [`${u.rule.id}\u0000${u.deviceId}`, { ruleId: u.rule.id, deviceId: u.deviceId }]),
  );
  const states = await loadStates(sql, [...pairs.values()]);
  const statUnits = units.filter(
    (u): u is Extract<Unit, { kind: "metric" }> =>
      u.kind === "metric" &&
      statsWindow(u.rule, u.point.ts) !== null &&
      !isLate(u.rule, opts.maxLatenessMs ?? 0, u.point.ts, u.point.receivedAt),
  );
  const windows = await loadWindowStats(
    sql,
    batch.tenant,
    statUnits.map((u) => ({ deviceId: u.deviceId, metric: u.point.metric, ...statsWindow(u.rule, u.point.ts)! })),
  );
  const statsByUnit = new Map<Unit, WindowStats>(statUnits.map((u, i) => [u, windows[i]!]));
  const outcome = runUnits(units, states, (u) => statsByUnit.get(u) ?? null, INITIAL_STATE, opts.maxLatenessMs);
  if (outcome.late) metrics.lateReadings.inc(outcome.late);
  if (opts.dryRun) {
    const ids = outcome.open.map((a) => a.id);
    const existing = ids.length
      ? (await sql`SELECT count(*)::int AS n FROM alerts WHERE id = ANY(${ids}::uuid[])`)[0]!.n
      : 0;
    return { units: units.length, opened: ids.length - existing, resolved: 0 };
  }
  const { opened, resolved } = await commitOutcome(sql, batch.tenant, outcome, opts.fence);
  return { units: units.length, opened, resolved };
}
