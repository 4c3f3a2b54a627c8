/** Devices and their readings, tenant-scoped: raw readings, or buckets from the 1-minute rollups. */
import { and, asc, desc, eq, gt, gte, lt, sql as dsql } from "drizzle-orm";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { z } from "zod";
import { METRIC_NAME_PATTERN } from "../core/record.ts";
import type { Sql } from "../db/client.ts";
import { devices, readings } from "../db/schema.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { limitParam, parseQuery, timeParam } from "../http/validate.ts";
import { bucketSchema, deviceSchema, readingSchema } from "../openapi/views.ts";

export const devicePage = z.object({ devices: z.array(deviceSchema), next_after: z.string().nullable() });
export const readingList = z.object({ readings: z.array(readingSchema) });
export const bucketList = z.object({
  device_id: z.string(),
  metric: z.string(),
  bucket: z.string(),
  buckets: z.array(bucketSchema),
});

export const listQuery = z.object({
  limit: limitParam(1000, 100),
  after: z.string().optional().meta({ description: "device id to page after (next_after of the previous page)" }),
});
export const readingsQuery = z.object({
  from: timeParam.optional(),
  to: timeParam.optional(),
  metric: z.string().regex(METRIC_NAME_PATTERN).optional(),
  limit: limitParam(10_000, 1000),
  order: z.enum(["asc", "desc"]).default("desc"),
});
const BUCKETS = { "1m": "1 minute", "5m": "5 minutes", "15m": "15 minutes", "1h": "1 hour", "1d": "1 day" } as const;
export const bucketQuery = z.object({
  bucket: z.enum(Object.keys(BUCKETS) as [keyof typeof BUCKETS]).default("1m"),
  from: timeParam.optional(),
  to: timeParam.optional(),
  limit: limitParam(10_000, 1440),
});

const deviceJson = (d: typeof devices.$inferSelect): z.output<typeof deviceSchema> => ({
  device_id: d.deviceId,
  first_seen: d.firstSeen.toISOString(),
  last_seen: d.lastSeen.toISOString(),
  last_received_at: d.lastReceivedAt.toISOString(),
  location:
    d.lastLat === null || d.lastLon === null
      ? null
      : { lat: d.lastLat, lon: d.lastLon, at: d.lastLocationAt?.toISOString() ?? null },
});

export interface DeviceDeps {
  db: PostgresJsDatabase;
  sql: Sql;
}

const route = routesOf<DeviceDeps>();

export const deviceRoutes = [
  route({
    method: "get",
    path: "/api/v1/devices",
    tag: "devices",
    summary: "List devices (by id, paged)",
    auth: "tenant",
    query: listQuery,
    responses: { 200: ok("a page of devices", devicePage) },
    handler: async function listDevices(c, { db }) {
      const q = parseQuery(listQuery, c);
      const tenant = c.get("tenant");
      const where = q.after
        ? and(eq(devices.tenant, tenant), gt(devices.deviceId, q.after))
        : eq(devices.tenant, tenant);
      const rows = await db
        .select()
        .from(devices)
        .where(where)
        .orderBy(asc(devices.deviceId))
        .limit(q.limit + 1);
      const page = rows.slice(0, q.limit);
      const body: z.output<typeof devicePage> = {
        devices: page.map(deviceJson),
        next_after: rows.length > q.limit ? page.at(-1)!.deviceId : null,
      };
      return c.json(body);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/devices/:id",
    tag: "devices",
    summary: "Get a device (last seen, last location)",
    auth: "tenant",
    responses: { 200: ok("the device", deviceSchema) },
    handler: async function getDevice(c, { db }) {
      const [row] = await db
        .select()
        .from(devices)
        .where(and(eq(devices.tenant, c.get("tenant")), eq(devices.deviceId, c.req.param("id"))));
      if (!row) throw new HttpError(404, "not_found", "no such device");
      return c.json(deviceJson(row));
    },
  }),
  route({
    method: "get",
    path: "/api/v1/devices/:id/readings",
    tag: "devices",
    summary: "Raw readings of a device",
    auth: "tenant",
    query: readingsQuery,
    responses: { 200: ok("readings, newest first unless order=asc", readingList) },
    handler: async function deviceReadings(c, { db }) {
      const q = parseQuery(readingsQuery, c);
      const conds = [eq(readings.tenant, c.get("tenant")), eq(readings.deviceId, c.req.param("id"))];
      if (q.from) conds.push(gte(readings.ts, q.from));
      if (q.to) conds.push(lt(readings.ts, q.to));
      if (q.metric) conds.push(dsql`${readings.metrics} ? ${q.metric}`);
      const rows = await db
        .select()
        .from(readings)
        .where(and(...conds))
        .orderBy(q.order === "asc" ? asc(readings.ts) : desc(readings.ts), dsql`${readings.eventId}`)
        .limit(q.limit);
      const body: z.output<typeof readingList> = {
        readings: rows.map((r) => ({
          event_id: r.eventId,
          ts: r.ts.toISOString(),
          location: r.lat === null || r.lon === null ? null : { lat: r.lat, lon: r.lon },
          metrics: q.metric ? { [q.metric]: r.metrics![q.metric]! } : (r.metrics ?? {}), // the query kept rows that have it
          attributes: r.attributes ?? {},
          received_at: r.receivedAt.toISOString(),
        })),
      };
      return c.json(body);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/devices/:id/metrics/:metric",
    tag: "devices",
    summary: "A metric in time buckets, from the 1-minute rollups",
    auth: "tenant",
    query: bucketQuery,
    responses: { 200: ok("count, mean, min, max and stddev per bucket", bucketList) },
    handler: async function metricBuckets(c, { sql }) {
      const q = parseQuery(bucketQuery, c);
      const metric = c.req.param("metric");
      const to = q.to ?? new Date();
      const from = q.from ?? new Date(to.getTime() - 24 * 3_600_000);
      const rows = await sql`
        SELECT date_bin(${BUCKETS[q.bucket]}::interval, bucket, TIMESTAMPTZ 'epoch') AS start,
               sum(count)::float8 AS n, sum(sum) AS s, sum(sum_sq) AS sq, min(min) AS mn, max(max) AS mx
        FROM readings_1m
        WHERE tenant = ${c.get("tenant")} AND device_id = ${c.req.param("id")} AND metric = ${metric}
          AND bucket >= ${from.toISOString()}::timestamptz AND bucket < ${to.toISOString()}::timestamptz
        GROUP BY 1 ORDER BY 1 LIMIT ${q.limit}`;
      const body: z.output<typeof bucketList> = {
        device_id: c.req.param("id"),
        metric,
        bucket: q.bucket,
        buckets: rows.map((r) => {
          const n = r.n as number;
          const mean = (r.s as number) / n;
          return {
            start: (r.start as Date).toISOString(),
            count: n,
            mean,
            min: r.mn,
            max: r.mx,
            stddev: Math.sqrt(Math.max(0, (r.sq as number) / n - mean * mean)),
          };
        }),
      };
      return c.json(body);
    },
  }),
];
