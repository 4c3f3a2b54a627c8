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
      const [known] =
        await sql`SELECT 1 FROM devices WHERE tenant = ${c.get("tenant")} AND device_id = ${c.req.param("id")}`;
      if (!known) throw new HttpError(404, "not_found", "no such device");
      const where = sql`tenant = ${c.get("tenant")} AND device_id = ${c.req.param("id")}
        AND ts >= ${from.toISOString()}::timestamptz AND ts < ${to.toISOString()}::timestamptz
        AND lat IS NOT NULL AND lon IS NOT NULL`;
      const [{ total }] = (await sql`SELECT count(*)::int AS total FROM readings WHERE ${where}`) as unknown as [
        { total: number },
      ];
      const t = sql`(extract(epoch FROM ts) * 1000)::float8`;
      let rows: Point[];
      if (total <= q.max_points) {
        rows =
          (await sql`SELECT ${t}, lat, lon FROM readings WHERE ${where} ORDER BY ts, event_id`.values()) as unknown as Point[];
      } else {
        // max_points - 1 buckets of equal time, the first position of each, then the last position.
        const width = (to.getTime() - from.getTime()) / (q.max_points - 1);
        rows = (await sql`
          SELECT t, lat, lon FROM (
            SELECT DISTINCT ON (b) t, lat, lon FROM (
              SELECT floor((${t} - ${from.getTime()}) / ${width}) AS b, ${t} AS t, lat, lon, ts, event_id
              FROM readings WHERE ${where}) x
            ORDER BY b, ts, event_id) b
          UNION ALL
          (SELECT ${t}, lat, lon FROM readings WHERE ${where} ORDER BY ts DESC, event_id DESC LIMIT 1)
          ORDER BY 1`.values()) as unknown as Point[];
        rows = rows.filter((p, i) => i === 0 || p[0] !== rows[i - 1]![0]).slice(-q.max_points);
      }
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
