/**
 * The dashboard's own read endpoints, tenant-scoped, shaped for one page showing 10,000 devices:
 * every device in one compact response, the latest reading of only the devices on screen, and
 * the server charts (this process's metrics; consumer lag is server-wide).
 */
import { z } from "zod";
import { DEVICE_ID_PATTERN } from "../core/record.ts";
import type { Sql } from "../db/client.ts";
import { ok, routesOf } from "../http/route.ts";
import { parseQuery } from "../http/validate.ts";
import { sampler } from "./stats.ts";

export const MAX_DASHBOARD_DEVICES = 50_000;
export const MAX_LATEST = 200;

const num = z.number();
export const statsResponse = z
  .object({
    tenant: z.string(),
    devices: z.number().int(),
    open_alerts: z.number().int().meta({ description: "open or acknowledged" }),
    rules: z.number().int(),
    interval_ms: z.number().int(),
    points: z.array(
      z.object({
        t: z.number().meta({ description: "epoch ms, end of the interval" }),
        ingest_rate: num.meta({ description: "records/s accepted by this process" }),
        rejected_rate: num,
        written_rate: num.meta({ description: "rows/s inserted by this process's writer" }),
        writer_lag: num.nullable().meta({ description: "messages pending for the writer consumer (server-wide)" }),
        evaluator_lag: num.nullable(),
        flush_mean_ms: num.nullable(),
        flush_p95_ms: num.nullable(),
      }),
    ),
  })
  .meta({ id: "DashboardStats" });

export const devicesResponse = z
  .object({
    columns: z.tuple([z.literal("device_id"), z.literal("last_seen_ms"), z.literal("lat"), z.literal("lon")]),
    rows: z.array(z.tuple([z.string(), z.number(), z.number().nullable(), z.number().nullable()])),
    truncated: z.boolean().meta({ description: `true when the tenant has more than ${MAX_DASHBOARD_DEVICES} devices` }),
  })
  .meta({ id: "DashboardDevices" });

export const latestQuery = z.object({
  devices: z
    .string()
    .default("")
    .meta({ description: `comma-separated device ids, at most ${MAX_LATEST}` })
    .transform((s) => s.split(",").filter(Boolean))
    .pipe(z.array(z.string().regex(DEVICE_ID_PATTERN)).max(MAX_LATEST)),
});

export const latestResponse = z
  .object({ latest: z.record(z.string(), z.object({ ts: z.string(), metrics: z.record(z.string(), z.number()) })) })
  .meta({ id: "DashboardLatest" });

const route = routesOf<{ sql: Sql }>();

export const dashboardApiRoutes = [
  route({
    method: "get",
    path: "/api/v1/dashboard/stats",
    tag: "dashboard",
    summary: "The dashboard's counts and server charts",
    description:
      "Rates are this process's (all tenants); consumer lag is server-wide. Sampling starts with the first request and stops after 10 idle minutes.",
    auth: "tenant",
    responses: { 200: ok("counts and the last minutes' points", statsResponse) },
    handler: async function dashboardStats(c, { sql }) {
      const tenant = c.get("tenant");
      const [[counts], series] = await Promise.all([
        sql`SELECT (SELECT count(*) FROM devices WHERE tenant = ${tenant})::int AS devices,
                   (SELECT count(*) FROM alerts WHERE tenant = ${tenant} AND status <> 'resolved')::int AS open_alerts,
                   (SELECT count(*) FROM rules WHERE tenant = ${tenant})::int AS rules`,
        sampler.series(),
      ]);
      const body: z.output<typeof statsResponse> = {
        tenant,
        devices: counts!.devices,
        open_alerts: counts!.open_alerts,
        rules: counts!.rules,
        ...series,
      };
      return c.json(body);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/dashboard/devices",
    tag: "dashboard",
    summary: "Every device of the tenant, compact (for the list and the position plot)",
    auth: "tenant",
    responses: { 200: ok("one row per device", devicesResponse) },
    handler: async function dashboardDevices(c, { sql }) {
      const rows = await sql`
        SELECT device_id, (extract(epoch FROM last_seen) * 1000)::float8 AS seen, last_lat, last_lon
        FROM devices WHERE tenant = ${c.get("tenant")} ORDER BY device_id LIMIT ${MAX_DASHBOARD_DEVICES + 1}`.values();
      const body: z.output<typeof devicesResponse> = {
        columns: ["device_id", "last_seen_ms", "lat", "lon"],
        rows: rows.slice(0, MAX_DASHBOARD_DEVICES) as Array<[string, number, number | null, number | null]>,
        truncated: rows.length > MAX_DASHBOARD_DEVICES,
      };
      return c.json(body);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/dashboard/latest",
    tag: "dashboard",
    summary: "The latest reading with metrics of each named device",
    auth: "tenant",
    query: latestQuery,
    responses: { 200: ok("by device id; devices without readings are left out", latestResponse) },
    handler: async function dashboardLatest(c, { sql }) {
      const { devices } = parseQuery(latestQuery, c);
      const rows = devices.length
        ? await sql`
            SELECT d.device_id, r.ts, r.metrics FROM unnest(${devices}::text[]) AS d(device_id)
            CROSS JOIN LATERAL (
              SELECT ts, metrics FROM readings WHERE tenant = ${c.get("tenant")} AND device_id = d.device_id AND metrics IS NOT NULL
              ORDER BY ts DESC LIMIT 1) r`
        : [];
      const body: z.output<typeof latestResponse> = {
        latest: Object.fromEntries(
          rows.map((r) => [
            r.device_id as string,
            { ts: (r.ts as Date).toISOString(), metrics: r.metrics as Record<string, number> },
          ]),
        ),
      };
      return c.json(body);
    },
  }),
];
