/**
 * What one writer batch becomes before it reaches SQL, free of I/O: the readings' rows (a copy
 * redelivered inside the batch dropped; copy-binary.ts turns them into COPY's binary format), the
 * 1-minute rollups of those rows and the per-device summary.
 */
import type { Envelope } from "../core/envelope.ts";
import type { AttributeValue } from "../core/record.ts";
import { toIso } from "../core/timestamp.ts";

export interface Row {
  tenant: string;
  deviceId: string;
  ts: number;
  eventId: string;
  lat: number | null;
  lon: number | null;
  metrics: Record<string, number> | null;
  attributes: Record<string, AttributeValue> | null;
  receivedAt: number;
}

export interface Rollup {
  tenant: string;
  deviceId: string;
  metric: string;
  bucket: number;
  count: number;
  sum: number;
  sumSq: number;
  min: number;
  max: number;
}

export interface DeviceState {
  tenant: string;
  deviceId: string;
  firstSeen: number;
  lastSeen: number;
  lastReceivedAt: number;
  lat: number | null;
  lon: number | null;
  locationAt: number | null;
}

export const iso = toIso;

/** The batch's rows, each event once. */
export function batchRows(envelopes: readonly Envelope[]): Row[] {
  const rows: Row[] = [];
  const seen = new Set<string>();
  for (const env of envelopes) {
    for (const r of env.readings) {
      if (seen.has(r.eventId)) continue; // a redelivered copy inside the same batch
      seen.add(r.eventId);
      rows.push({
        tenant: r.tenant,
        deviceId: r.deviceId,
        ts: r.ts,
        eventId: r.eventId,
        lat: r.lat,
        lon: r.lon,
        metrics: r.metrics,
        attributes: r.attributes,
        receivedAt: env.receivedAt,
      });
    }
  }
  return rows;
}

/** Column order of COPY_COLUMNS. */
export const COPY_COLUMNS = "tenant, device_id, ts, event_id, lat, lon, metrics, attributes, received_at";

/**
 * The 1-minute rollups of `rows` (count, sum, sum of squares, min, max per tenant, device, metric,
 * minute), sorted by key like the SQL path's ORDER BY, so concurrent flushes lock in one order.
 */
export function rollupsOf(rows: readonly Row[]): Rollup[] {
  // Rows come a device's run at a time (one envelope = one device, in ts order), so the device and
  // minute lookups are mostly skipped; no key string is built per reading and metric.
  const devices = new Map<string, Map<number, Map<string, Rollup>>>();
  const out: Rollup[] = [];
  let lastTenant = "";
  let lastDevice = "";
  let buckets: Map<number, Map<string, Rollup>> | undefined;
  let lastBucket = Number.NaN;
  let metrics: Map<string, Rollup> | undefined;
  for (const r of rows) {
    if (!r.metrics) continue;
    if (buckets === undefined || r.tenant !== lastTenant || r.deviceId !== lastDevice) {
      const key = `${r.tenant}\u0000${r.deviceId}`;
      buckets = devices.get(key);
      if (!buckets) devices.set(key, (buckets = new Map()));
      lastTenant = r.tenant;
      lastDevice = r.deviceId;
      lastBucket = Number.NaN;
    }
    const bucket = r.ts - (((r.ts % 60_000) + 60_000) % 60_000);
    if (metrics === undefined || bucket !== lastBucket) {
      metrics = buckets.get(bucket);
      if (!metrics) buckets.set(bucket, (metrics = new Map()));
      lastBucket = bucket;
    }
    for (const metric in r.metrics) {
      const v = r.metrics[metric]!;
      const g = metrics.get(metric);
      if (g) {
        g.count++;
        g.sum += v;
        g.sumSq += v * v;
        if (v < g.min) g.min = v;
        if (v > g.max) g.max = v;
      } else {
        const n = {
          tenant: r.tenant,
          deviceId: r.deviceId,
          metric,
          bucket,
          count: 1,
          sum: v,
          sumSq: v * v,
          min: v,
          max: v,
        };
        metrics.set(metric, n);
        out.push(n);
      }
    }
  }
  return out.sort(
    (a, b) => cmp(a.tenant, b.tenant) || cmp(a.deviceId, b.deviceId) || cmp(a.metric, b.metric) || a.bucket - b.bucket,
  );
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Per-device summary of a batch, sorted by key so concurrent flushes lock rows in one order. */
export function summarizeDevices(envelopes: readonly Envelope[]): DeviceState[] {
  const map = new Map<string, DeviceState>();
  for (const env of envelopes) {
    const key = `${env.tenant}\u0000${env.deviceId}`;
    let d = map.get(key);
    if (!d) {
      d = {
        tenant: env.tenant,
        deviceId: env.deviceId,
        firstSeen: Infinity,
        lastSeen: -Infinity,
        lastReceivedAt: env.receivedAt,
        lat: null,
        lon: null,
        locationAt: null,
      };
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
  return [...map.entries()].sort(([a], [b]) => cmp(a, b)).map(([, d]) => d);
}
