/**
 * The writer's database side: one transaction per batch with one set-based INSERT for the
 * readings (unnest of column arrays, ON CONFLICT DO NOTHING on the event key) that also feeds
 * the 1-minute rollups, one upsert of the devices touched, and the quarantine rows of the batch.
 * Nothing is acknowledged before COMMIT.
 */
import type { Sql } from "../db/client.ts";
import type { Envelope } from "../core/envelope.ts";
import { insertQuarantine, type QuarantineRow } from "../db/quarantine.ts";


export interface WriteResult {
  inserted: number;
  readings: number;
}

interface DeviceState {
  tenant: string;
  deviceId: string;
  firstSeen: number;
  lastSeen: number;
  lastReceivedAt: number;
  lat: number | null;
  lon: number | null;
  locationAt: number | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Per-device summary of a batch, sorted by key so concurrent flushes lock rows in one order. */
export function summarizeDevices(envelopes: readonly Envelope[]): DeviceState[] {
  const map = new Map<string, DeviceState>();
  for (const env of envelopes) {
    const key = `${env.tenant}\u0000${env.deviceId}`;
    let d = map.get(key);
    if (!d) {
      d = { tenant: env.tenant, deviceId: env.deviceId, firstSeen: Infinity, lastSeen: -Infinity, lastReceivedAt: env.receivedAt, lat: null, lon: null, locationAt: null };
      map.set(key, d);
    }
    d.lastReceivedAt = Math.max(d.lastReceivedAt, env.receivedAt);
    for (const r of env.readings) {
      d.firstSeen = Math.min(d.firstSeen, r.ts);
      d.lastSeen = Math.max(d.lastSeen, r.ts);
      if (r.lat !== null && (d.locationAt === null || r.ts >= d.locationAt)) {
        d.lat = r.lat;
        d.lon = r.lon;
        d.locationAt = r.ts;
      }
    }
  }
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, d]) => d);
}

export async function writeBatch(sql: Sql, envelopes: readonly Envelope[], quarantined: readonly QuarantineRow[] = []): Promise<WriteResult> {
  const cols = { tenant: [] as string[], device: [] as string[], ts: [] as string[], id: [] as string[], lat: [] as (number | null)[], lon: [] as (number | null)[], m: [] as (string | null)[], a: [] as (string | null)[], rx: [] as string[] };
  const seen = new Set<string>();
  for (const env of envelopes) {
    const rx = iso(env.receivedAt);
    for (const r of env.readings) {
      if (seen.has(r.eventId)) continue; // a redelivered copy inside the same batch
      seen.add(r.eventId);
      cols.tenant.push(r.tenant);
      cols.device.push(r.deviceId);
      cols.ts.push(iso(r.ts));
      cols.id.push(r.eventId);
      cols.lat.push(r.lat);
      cols.lon.push(r.lon);
      cols.m.push(r.metrics ? JSON.stringify(r.metrics) : null);
      cols.a.push(r.attributes ? JSON.stringify(r.attributes) : null);
      cols.rx.push(rx);
    }
  }
  const devices = summarizeDevices(envelopes);
  const results = await sql.begin((tx) => {
    const statements = [];
    if (cols.id.length > 0) {
      // Rollups are fed from the rows this INSERT actually added (RETURNING), in the same
      // transaction: a duplicate or a replayed reading inserts nothing and so counts nothing.
      statements.push(tx`
        WITH ins AS (
          INSERT INTO readings (tenant, device_id, ts, event_id, lat, lon, metrics, attributes, received_at)
          SELECT tenant, device_id, ts::timestamptz, event_id::uuid, lat, lon, m::jsonb, a::jsonb, rx::timestamptz
          FROM unnest(${cols.tenant}::text[], ${cols.device}::text[], ${cols.ts}::text[], ${cols.id}::text[],
                      ${cols.lat}::float8[], ${cols.lon}::float8[], ${cols.m}::text[], ${cols.a}::text[], ${cols.rx}::text[])
               AS u(tenant, device_id, ts, event_id, lat, lon, m, a, rx)
          ON CONFLICT DO NOTHING
          RETURNING tenant, device_id, ts, metrics
        ), agg AS (
          SELECT i.tenant, i.device_id, kv.key AS metric, date_trunc('minute', i.ts, 'UTC') AS bucket,
                 count(*) AS n, sum(kv.value::float8) AS s, sum(kv.value::float8 * kv.value::float8) AS sq,
                 min(kv.value::float8) AS mn, max(kv.value::float8) AS mx
          FROM ins i CROSS JOIN LATERAL jsonb_each(i.metrics) AS kv
          GROUP BY 1, 2, 3, 4
          ORDER BY 1, 2, 3, 4
        ), rollup AS (
          INSERT INTO readings_1m AS r (tenant, device_id, metric, bucket, count, sum, sum_sq, min, max)
          SELECT tenant, device_id, metric, bucket, n, s, sq, mn, mx FROM agg
          ON CONFLICT (tenant, device_id, metric, bucket) DO UPDATE SET
            count = r.count + EXCLUDED.count, sum = r.sum + EXCLUDED.sum, sum_sq = r.sum_sq + EXCLUDED.sum_sq,
            min = LEAST(r.min, EXCLUDED.min), max = GREATEST(r.max, EXCLUDED.max)
          RETURNING 1
        )
        SELECT (SELECT count(*) FROM ins)::int AS inserted, (SELECT count(*) FROM rollup)::int AS buckets`);
    }
    if (devices.length > 0) {
      statements.push(tx`
        INSERT INTO devices AS d (tenant, device_id, first_seen, last_seen, last_received_at, last_lat, last_lon, last_location_at)
        SELECT tenant, device_id, fs::timestamptz, ls::timestamptz, lr::timestamptz, lat, lon, la::timestamptz
        FROM unnest(${devices.map((d) => d.tenant)}::text[], ${devices.map((d) => d.deviceId)}::text[],
                    ${devices.map((d) => iso(d.firstSeen))}::text[], ${devices.map((d) => iso(d.lastSeen))}::text[],
                    ${devices.map((d) => iso(d.lastReceivedAt))}::text[], ${devices.map((d) => d.lat)}::float8[],
                    ${devices.map((d) => d.lon)}::float8[], ${devices.map((d) => (d.locationAt === null ? null : iso(d.locationAt)))}::text[])
             AS u(tenant, device_id, fs, ls, lr, lat, lon, la)
        ON CONFLICT (tenant, device_id) DO UPDATE SET
          first_seen = LEAST(d.first_seen, EXCLUDED.first_seen),
          last_seen = GREATEST(d.last_seen, EXCLUDED.last_seen),
          last_received_at = GREATEST(d.last_received_at, EXCLUDED.last_received_at),
          last_lat = CASE WHEN EXCLUDED.last_location_at >= d.last_location_at OR d.last_location_at IS NULL
                          THEN COALESCE(EXCLUDED.last_lat, d.last_lat) ELSE d.last_lat END,
          last_lon = CASE WHEN EXCLUDED.last_location_at >= d.last_location_at OR d.last_location_at IS NULL
                          THEN COALESCE(EXCLUDED.last_lon, d.last_lon) ELSE d.last_lon END,
          last_location_at = GREATEST(d.last_location_at, EXCLUDED.last_location_at)`);
    }
    for (const q of quarantined) statements.push(insertQuarantine(tx as unknown as Sql, q));
    return statements;
  });
  const inserted = cols.id.length > 0 ? (results[0] as unknown as Array<{ inserted: number }>)[0]!.inserted : 0;
  return { inserted, readings: cols.id.length };
}
