/**
 * A device's track: its stored positions in a time range, downsampled on the server so a long
 * range never sends every raw point to the browser (decision 0700). Up to max_points positions
 * come back as they are; beyond that the range is cut into max_points equal time buckets and each
 * bucket keeps its first position, plus the range's last position (where the device ended up).
 */
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { parseQuery, timeParam } from "../http/validate.ts";
import { err } from "../openapi/views.ts";

export const MAX_TRACK_POINTS = 10_000;

export const trackQuery = z.object({
  from: timeParam.optional().meta({ description: "default: 24 hours before `to`" }),
  to: timeParam.optional().meta({ description: "default: now (exclusive)" }),
  max_points: z.coerce.number().int().min(2).max(MAX_TRACK_POINTS).default(2000),
});

export const trackResponse = z
  .object({
    device_id: z.string(),
    from: z.string(),
    to: z.string(),
    total: z.number().int().meta({ description: "stored positions in the range" }),
    downsampled: z.boolean(),
    columns: z.tuple([z.literal("t_ms"), z.literal("lat"), z.literal("lon")]),
    points: z.array(z.tuple([z.number(), z.number(), z.number()])).meta({ description: "oldest first" }),
  })
  .meta({ id: "DeviceTrack" });

type Point = [number, number, number];
const route = routesOf<{ sql: Sql }>();

/**
 * One statement: whether the device is known, how many positions the range holds and the points
 * — all of them up to maxPoints; beyond that maxPoints - 1 buckets of equal time, the first
 * position of each, then the range's last position. The count is an InitPlan, so only the branch
 * it selects scans the positions.
 */
async function trackRows(sql: Sql, tenant: string, deviceId: string, from: Date, to: Date, maxPoints: number) {
  const where = sql`tenant = ${tenant} AND device_id = ${deviceId}
    AND ts >= ${from.toISOString()}::timestamptz AND ts < ${to.toISOString()}::timestamptz
    AND lat IS NOT NULL AND lon IS NOT NULL`;
  const t = sql`(extract(epoch FROM ts) * 1000)::float8`;
  const width = (to.getTime() - from.getTime()) / (maxPoints - 1);
  const result = (await sql`
    WITH n AS (SELECT count(*)::int AS total FROM readings WHERE ${where}),
    pts AS (
      (SELECT ${t} AS t, lat, lon, ts, event_id FROM readings
       WHERE ${where} AND (SELECT total FROM n) <= ${maxPoints})
      UNION ALL
      (SELECT DISTINCT ON (b) t, lat, lon, ts, event_id FROM (
         SELECT floor((${t} - ${from.getTime()}) / ${width}) AS b, ${t} AS t, lat, lon, ts, event_id
         FROM readings WHERE ${where} AND (SELECT total FROM n) > ${maxPoints}) x
       ORDER BY b, ts, event_id)
      UNION ALL
      (SELECT ${t}, lat, lon, ts, event_id FROM readings WHERE ${where} AND (SELECT total FROM n) > ${maxPoints}
       ORDER BY ts DESC, event_id DESC LIMIT 1)
    )
    SELECT EXISTS (SELECT 1 FROM devices WHERE tenant = ${tenant} AND device_id = ${deviceId}) AS known,
           n.total, p.t, p.lat, p.lon
    FROM n LEFT JOIN pts p ON true
    ORDER BY p.ts, p.event_id`.values()) as unknown as Array<[boolean, number, number | null, number, number]>;
  const [known, total] = result[0]!;
  let rows = result.filter((r) => r[2] !== null).map((r) => [r[2], r[3], r[4]] as Point);
  if (total > maxPoints) rows = rows.filter((p, i) => i === 0 || p[0] !== rows[i - 1]![0]).slice(-maxPoints);
  return { known, total, rows };
}

export const trackRoutes = [
  route({
    method: "get",
    path: "/api/v1/devices/:id/track",
    tag: "devices",
    summary: "A device's positions in a time range, downsampled on the server for long ranges",
    auth: "tenant",
    query: trackQuery,
    responses: {
      200: ok("at most max_points positions, oldest first", trackResponse),
      404: err("no such device (it has sent nothing yet)"),
    },
    handler: async function deviceTrack(c, { sql }) {
      const q = parseQuery(trackQuery, c);
      const to = q.to ?? new Date();
      const from = q.from ?? new Date(to.getTime() - 86_400_000);
      if (from >= to) throw new HttpError(400, "invalid_query", "from must be before to");
      const { known, total, rows } = await trackRows(sql, c.get("tenant"), c.req.param("id"), from, to, q.max_points);
      if (!known) throw new HttpError(404, "not_found", "no such device");
      const body: z.output<typeof trackResponse> = {
        device_id: c.req.param("id"),
        from: from.toISOString(),
        to: to.toISOString(),
        total,
        downsampled: total > rows.length,
        columns: ["t_ms", "lat", "lon"],
        points: rows,
      };
      return c.json(body);
    },
  }),
];
