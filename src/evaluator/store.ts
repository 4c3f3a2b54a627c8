/** The evaluator's database side: rule states, window statistics, and alert changes with their outbox rows. */
import type { TransactionSql } from "postgres";
import type { RuleState, WindowStats } from "../core/rules/engine.ts";
import type { Sql } from "../db/client.ts";
import { alertView } from "../db/alert-row.ts";
import { enqueueAlertNotifications } from "../db/outbox.ts";
import { type Fence, passFence } from "./fence.ts";
import type { Outcome } from "./plan.ts";
import { stateKey } from "./plan.ts";

const ms = (d: Date | null) => (d === null ? null : d.getTime());
const iso = (n: number | null) => (n === null ? null : new Date(n).toISOString());

export async function loadStates(
  sql: Sql,
  pairs: ReadonlyArray<{ ruleId: string; deviceId: string }>,
): Promise<Map<string, RuleState>> {
  const out = new Map<string, RuleState>();
  if (pairs.length === 0) return out;
  const rows = await sql`
    SELECT s.rule_id, s.device_id, s.active, s.active_since, s.last_alert_at, s.last_value, s.last_ts, s.inside,
           s.last_arrival
    FROM rule_state s
    JOIN unnest(${pairs.map((p) => p.ruleId)}::uuid[], ${pairs.map((p) => p.deviceId)}::text[]) AS k(rule_id, device_id)
      ON s.rule_id = k.rule_id AND s.device_id = k.device_id`;
  for (const r of rows) {
    out.set(stateKey(r.rule_id, r.device_id), {
      active: r.active,
      activeSince: ms(r.active_since),
      lastAlertAt: ms(r.last_alert_at),
      lastValue: r.last_value,
      lastTs: ms(r.last_ts),
      inside: r.inside,
      lastArrival: ms(r.last_arrival),
    });
  }
  return out;
}

export interface StatsRequest {
  deviceId: string;
  metric: string;
  from: number;
  to: number;
}

/** One query for every window of the batch: bucket count, reading count, mean and stddev. */
export async function loadWindowStats(
  sql: Sql,
  tenant: string,
  requests: readonly StatsRequest[],
): Promise<WindowStats[]> {
  if (requests.length === 0) return [];
  const rows = await sql`
    SELECT u.i::int AS i, count(r.bucket)::int AS buckets, coalesce(sum(r.count), 0)::float8 AS n,
           coalesce(sum(r.sum), 0) AS s, coalesce(sum(r.sum_sq), 0) AS sq
    FROM unnest(${requests.map((r) => r.deviceId)}::text[], ${requests.map((r) => r.metric)}::text[],
                ${requests.map((r) => iso(r.from))}::timestamptz[], ${requests.map((r) => iso(r.to))}::timestamptz[])
         WITH ORDINALITY AS u(device_id, metric, f, t, i)
    LEFT JOIN readings_1m r
      ON r.tenant = ${tenant} AND r.device_id = u.device_id AND r.metric = u.metric AND r.bucket >= u.f AND r.bucket < u.t
    GROUP BY u.i ORDER BY u.i`;
  return rows.map((r) => {
    const n = r.n as number;
    const mean = n > 0 ? (r.s as number) / n : 0;
    const meanSquare = n > 0 ? (r.sq as number) / n : 0;
    // E[x²] − mean² loses precision on flat series; below rounding noise the spread is zero.
    const raw = meanSquare - mean * mean;
    const variance = raw <= 1e-12 * meanSquare ? 0 : raw;
    return { buckets: r.buckets as number, count: n, mean, stddev: Math.sqrt(variance) };
  });
}

/**
 * Persists an outcome atomically: states, new alerts (idempotent by id) and resolutions, with
 * outbox rows. With a fence (an evaluation partition's event), nothing is written when the event
 * was written before, and FencedError is thrown when another holder claimed the partition.
 */
// postgres.js sends a JS boolean[] parameter typed as a scalar boolean, so booleans travel as text[].
export async function commitOutcome(
  sql: Sql,
  tenant: string,
  outcome: Outcome,
  fence?: Fence,
): Promise<{ opened: number; resolved: number }> {
  return sql.begin(async (tx) => {
    if (fence && !(await passFence(tx, fence))) return { opened: 0, resolved: 0 };
    await saveStates(tx, outcome);
    let opened = 0;
    for (const a of outcome.open) {
      const [row] = await tx`
        INSERT INTO alerts (id, tenant, rule_id, rule_name, device_id, metric, severity, kind, value, message, details, triggered_at, trigger_event_id)
        VALUES (${a.id}, ${tenant}, ${a.rule.id}, ${a.rule.name}, ${a.deviceId}, ${a.rule.metric ?? null}, ${a.rule.severity},
                ${a.rule.condition.type}, ${a.fire.value}, ${a.fire.message}, ${tx.json(a.fire.details as never)},
                ${new Date(a.triggeredAt).toISOString()}, ${a.eventId})
        ON CONFLICT (id) DO NOTHING
        RETURNING *`;
      if (!row) continue;
      opened++;
      await enqueueAlertNotifications(tx, alertView(row), "alert.opened");
    }
    let resolved = 0;
    for (const r of outcome.resolve) {
      const rows = await tx`
        UPDATE alerts SET status = 'resolved', resolved_at = now(), resolution = 'auto'
        WHERE tenant = ${tenant} AND rule_id = ${r.rule.id} AND device_id = ${r.deviceId} AND status <> 'resolved'
        RETURNING *`;
      for (const row of rows) {
        resolved++;
        await enqueueAlertNotifications(tx, alertView(row), "alert.resolved");
      }
    }
    return { opened, resolved };
  });
}

async function saveStates(tx: TransactionSql, outcome: Outcome): Promise<void> {
  const list = [...outcome.states.values()];
  if (list.length === 0) return;
  list.sort((a, b) => (stateKey(a.rule.id, a.deviceId) < stateKey(b.rule.id, b.deviceId) ? -1 : 1));
  await tx`
    INSERT INTO rule_state (rule_id, device_id, active, active_since, last_alert_at, last_value, last_ts, inside, last_arrival, updated_at)
    SELECT rule_id, device_id, active, active_since, last_alert_at, last_value, last_ts, inside, last_arrival, now()
    FROM unnest(${list.map((x) => x.rule.id)}::uuid[], ${list.map((x) => x.deviceId)}::text[], ${list.map((x) => String(x.state.active))}::text[]::bool[],
                ${list.map((x) => iso(x.state.activeSince))}::timestamptz[], ${list.map((x) => iso(x.state.lastAlertAt))}::timestamptz[],
                ${list.map((x) => x.state.lastValue)}::float8[], ${list.map((x) => iso(x.state.lastTs))}::timestamptz[],
                ${list.map((x) => (x.state.inside === null ? null : String(x.state.inside)))}::text[]::bool[],
                ${list.map((x) => iso(x.state.lastArrival))}::timestamptz[])
         AS u(rule_id, device_id, active, active_since, last_alert_at, last_value, last_ts, inside, last_arrival)
    WHERE EXISTS (SELECT 1 FROM rules WHERE rules.id = u.rule_id)
    ON CONFLICT (rule_id, device_id) DO UPDATE SET
      active = EXCLUDED.active, active_since = EXCLUDED.active_since, last_alert_at = EXCLUDED.last_alert_at,
      last_value = EXCLUDED.last_value, last_ts = EXCLUDED.last_ts, inside = EXCLUDED.inside,
      last_arrival = EXCLUDED.last_arrival, updated_at = now()`;
}
