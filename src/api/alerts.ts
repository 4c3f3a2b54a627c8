/**
 * Alerts, tenant-scoped: list (filters, cursor pagination), get, acknowledge, resolve.
 * Lifecycle: open -> acknowledged -> resolved (open -> resolved too). Each change is written with
 * its outbox rows in one transaction, so channels hear about it exactly when it happened.
 */
import type { Context } from "hono";
import { z } from "zod";
import { SEVERITIES } from "../core/rules/schema.ts";
import type { Sql } from "../db/client.ts";
import type { TenantEnv } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { limitParam, parseQuery, timeParam, uuidParam } from "../http/validate.ts";
import { alertView } from "../db/alert-row.ts";
import { enqueueAlertNotifications } from "../db/outbox.ts";
import { alertSchema, err } from "../openapi/views.ts";

export const ALERT_STATUSES = ["open", "acknowledged", "resolved"] as const;

export const listQuery = z.object({
  status: z
    .string()
    .meta({ description: "comma-separated: open, acknowledged, resolved" })
    .transform((s) => s.split(",").filter(Boolean))
    .pipe(z.array(z.enum(ALERT_STATUSES)))
    .optional(),
  device: z.string().optional(),
  rule: z.uuid().optional(),
  severity: z.enum(SEVERITIES).optional(),
  since: timeParam.optional(),
  until: timeParam.optional(),
  limit: limitParam(500, 50),
  cursor: z.string().optional().meta({ description: "next_cursor of the previous page" }),
});

/**
 * Cursor: (created_at in epoch microseconds, id) of the last alert of a page, newest first.
 * Microseconds, because alerts of one transaction share created_at down to the microsecond and a
 * millisecond cursor would skip some of them.
 */
const encodeCursor = (a: Record<string, any>) => Buffer.from(`${a.created_us}|${a.id}`).toString("base64url");
function decodeCursor(cursor: string): { createdUs: string; id: string } {
  const [createdUs, id] = Buffer.from(cursor, "base64url").toString().split("|");
  if (!createdUs || !/^\d+$/.test(createdUs) || !id || !/^[0-9a-f-]{36}$/.test(id))
    throw new HttpError(400, "invalid_query", "invalid cursor");
  return { createdUs, id };
}

export interface AlertDeps {
  sql: Sql;
  /** Called after an alert changed state through the API (wakes a local notifier). */
  onAlertChange: () => void;
}

const route = routesOf<AlertDeps>();

const transition = (to: "acknowledged" | "resolved") =>
  async function changeAlert(c: Context<TenantEnv>, { sql, onAlertChange: onChange }: AlertDeps) {
    const tenant = c.get("tenant");
    const id = uuidParam(c);
    const row = await sql.begin(async (tx) => {
      const [current] = await tx`SELECT * FROM alerts WHERE tenant = ${tenant} AND id = ${id} FOR UPDATE`;
      if (!current) throw new HttpError(404, "not_found", "no such alert");
      if (current.status === to) return current; // idempotent
      if (current.status === "resolved") throw new HttpError(409, "alert_resolved", "the alert is already resolved");
      const [updated] =
        to === "acknowledged"
          ? await tx`UPDATE alerts SET status = 'acknowledged', acknowledged_at = now() WHERE id = ${id} RETURNING *`
          : await tx`UPDATE alerts SET status = 'resolved', resolved_at = now(), resolution = 'manual' WHERE id = ${id} RETURNING *`;
      await enqueueAlertNotifications(
        tx,
        alertView(updated!),
        to === "acknowledged" ? "alert.acknowledged" : "alert.resolved",
      );
      return updated!;
    });
    onChange();
    return c.json(alertView(row));
  };

export const alertRoutes = [
  route({
    method: "get",
    path: "/api/v1/alerts",
    tag: "alerts",
    summary: "List alerts, newest first (filters, cursor pages)",
    auth: "tenant",
    query: listQuery,
    responses: {
      200: ok("a page of alerts", z.object({ alerts: z.array(alertSchema), next_cursor: z.string().nullable() })),
    },
    handler: async function listAlerts(c, { sql }) {
      const q = parseQuery(listQuery, c);
      const after = q.cursor ? decodeCursor(q.cursor) : null;
      const rows = await sql`
        SELECT *, (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us FROM alerts
        WHERE tenant = ${c.get("tenant")}
          ${q.status?.length ? sql`AND status = ANY(${q.status}::text[])` : sql``}
          ${q.device ? sql`AND device_id = ${q.device}` : sql``}
          ${q.rule ? sql`AND rule_id = ${q.rule}` : sql``}
          ${q.severity ? sql`AND severity = ${q.severity}` : sql``}
          ${q.since ? sql`AND triggered_at >= ${q.since.toISOString()}::timestamptz` : sql``}
          ${q.until ? sql`AND triggered_at < ${q.until.toISOString()}::timestamptz` : sql``}
          ${after ? sql`AND (created_at, id) < (TIMESTAMPTZ 'epoch' + ${after.createdUs}::bigint * INTERVAL '1 microsecond', ${after.id}::uuid)` : sql``}
        ORDER BY created_at DESC, id DESC
        LIMIT ${q.limit + 1}`;
      const page = rows.slice(0, q.limit);
      return c.json({
        alerts: page.map(alertView),
        next_cursor: rows.length > q.limit ? encodeCursor(page.at(-1)!) : null,
      });
    },
  }),
  route({
    method: "get",
    path: "/api/v1/alerts/:id",
    tag: "alerts",
    summary: "Get an alert",
    auth: "tenant",
    responses: { 200: ok("the alert", alertSchema) },
    handler: async function getAlert(c, { sql }) {
      const [row] = await sql`SELECT * FROM alerts WHERE tenant = ${c.get("tenant")} AND id = ${uuidParam(c)}`;
      if (!row) throw new HttpError(404, "not_found", "no such alert");
      return c.json(alertView(row));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/alerts/:id/acknowledge",
    tag: "alerts",
    summary: "Acknowledge an alert (idempotent)",
    auth: "tenant",
    responses: { 200: ok("the alert", alertSchema), 409: err("alert_resolved: already resolved") },
    handler: transition("acknowledged"),
  }),
  route({
    method: "post",
    path: "/api/v1/alerts/:id/resolve",
    tag: "alerts",
    summary: "Resolve an alert (idempotent)",
    auth: "tenant",
    responses: { 200: ok("the alert", alertSchema) },
    handler: transition("resolved"),
  }),
];
