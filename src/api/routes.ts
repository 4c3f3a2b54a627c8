/** API role (read side, tenant-scoped): devices and their readings. Another tenant's data is a 404. */
import { and, asc, desc, eq, gt, gte, lt, sql as dsql } from "drizzle-orm";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { Hono } from "hono";
import { z } from "zod";
import { parseRfc3339 } from "../core/timestamp.ts";
import { devices, readings } from "../db/schema.ts";
import { requireTenant, type KeyResolver, type TenantEnv } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";

const time = z.string().transform((text, ctx) => {
  if (/^\d+$/.test(text)) return new Date(Number(text));
  const r = parseRfc3339(text);
  if (!r.ok) {
    ctx.addIssue({ code: "custom", message: r.message });
    return z.NEVER;
  }
  return new Date(r.ms);
});
const limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);

const listQuery = z.object({ limit: limit(1000, 100), after: z.string().optional() });
const readingsQuery = z.object({
  from: time.optional(),
  to: time.optional(),
  limit: limit(10_000, 1000),
  order: z.enum(["asc", "desc"]).default("desc"),
});

function query<T extends z.ZodType>(schema: T, raw: Record<string, string>): z.output<T> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    throw new HttpError(400, "invalid_query", "invalid query parameters", r.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })));
  }
  return r.data;
}

const deviceJson = (d: typeof devices.$inferSelect) => ({
  device_id: d.deviceId,
  first_seen: d.firstSeen.toISOString(),
  last_seen: d.lastSeen.toISOString(),
  last_received_at: d.lastReceivedAt.toISOString(),
  location: d.lastLat === null || d.lastLon === null ? null : { lat: d.lastLat, lon: d.lastLon, at: d.lastLocationAt?.toISOString() ?? null },
});

export function apiRoutes(db: PostgresJsDatabase, keys: KeyResolver) {
  const app = new Hono<TenantEnv>();
  app.use("/api/v1/devices", requireTenant(keys));
  app.use("/api/v1/devices/*", requireTenant(keys));

  app.get("/api/v1/devices", async function listDevices(c) {
    const q = query(listQuery, c.req.query());
    const tenant = c.get("tenant");
    const where = q.after ? and(eq(devices.tenant, tenant), gt(devices.deviceId, q.after)) : eq(devices.tenant, tenant);
    const rows = await db.select().from(devices).where(where).orderBy(asc(devices.deviceId)).limit(q.limit + 1);
    const page = rows.slice(0, q.limit);
    return c.json({ devices: page.map(deviceJson), next_after: rows.length > q.limit ? page.at(-1)!.deviceId : null });
  });

  app.get("/api/v1/devices/:id", async function getDevice(c) {
    const [row] = await db.select().from(devices).where(and(eq(devices.tenant, c.get("tenant")), eq(devices.deviceId, c.req.param("id"))));
    if (!row) throw new HttpError(404, "not_found", "no such device");
    return c.json(deviceJson(row));
  });

  app.get("/api/v1/devices/:id/readings", async function deviceReadings(c) {
    const q = query(readingsQuery, c.req.query());
    const conds = [eq(readings.tenant, c.get("tenant")), eq(readings.deviceId, c.req.param("id"))];
    if (q.from) conds.push(gte(readings.ts, q.from));
    if (q.to) conds.push(lt(readings.ts, q.to));
    const rows = await db
      .select()
      .from(readings)
      .where(and(...conds))
      .orderBy(q.order === "asc" ? asc(readings.ts) : desc(readings.ts), dsql`${readings.eventId}`)
      .limit(q.limit);
    return c.json({
      readings: rows.map((r) => ({
        event_id: r.eventId,
        ts: r.ts.toISOString(),
        location: r.lat === null || r.lon === null ? null : { lat: r.lat, lon: r.lon },
        metrics: r.metrics ?? {},
        attributes: r.attributes ?? {},
        received_at: r.receivedAt.toISOString(),
      })),
    });
  });
  return app;
}
