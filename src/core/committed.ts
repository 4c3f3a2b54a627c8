/**
 * "Batch committed" events: after each COMMIT the writer publishes, per tenant, what the evaluator
 * needs from that batch, and only then acks the readings. Evaluation therefore always sees data
 * that is in the database (rollups included), never slows the writer (one small publish per
 * batch), and is at-least-once: a crash between publish and ack republishes the same summary,
 * which the evaluator's stale-reading rule and alert ids make harmless.
 *
 * Content, per tenant: for every (device, metric) in the batch its latest value, and its highest
 * and lowest when those are other readings (so a spike inside a batch is seen whatever the batch
 * size; the same value as the latest is not repeated; cost still grows with distinct series, not readings: at most 3 points each), every
 * position in time order per device (geofences need the path), and each device's latest reading
 * time. Each point and device also carries when ingest received it (the message's `rx`): the
 * evaluator's lateness bound and no_data are judged on arrival (decision 0460). Events written
 * before that field existed decode with the reading time as the arrival time.
 *
 *   {"v":1,"t":"acme",
 *    "s":[["truck-1","temp",<ts>,21.5,"<event id>",<received>], ...],
 *    "p":[["truck-1",<ts>,52.52,13.405,"<event id>",<received>], ...],
 *    "d":[["truck-1",<latest ts>,<latest received>], ...]}
 */
import { createHash } from "node:crypto";
import type { Envelope } from "./envelope.ts";

export const COMMITTED_PREFIX = "telemetry.committed.v1";

export interface SeriesPoint {
  deviceId: string;
  metric: string;
  ts: number;
  value: number;
  eventId: string;
  /** When ingest received the reading (epoch ms). */
  receivedAt: number;
}

export interface PositionPoint {
  deviceId: string;
  ts: number;
  lat: number;
  lon: number;
  eventId: string;
  receivedAt: number;
}

export interface CommittedBatch {
  tenant: string;
  series: SeriesPoint[];
  positions: PositionPoint[];
  /** Per device: its newest reading time and the newest time ingest received one of its readings. */
  devices: Array<{ deviceId: string; lastTs: number; receivedAt: number }>;
}

export function committedSubject(tenant: string): string {
  return `${COMMITTED_PREFIX}.${tenant}`;
}

/** The points kept of one (device, metric) series in a batch. */
interface Extremes {
  latest: SeriesPoint;
  max: SeriesPoint;
  min: SeriesPoint;
}

/** Summarizes a batch per tenant. Ties on time keep the later reading in batch order; ties on value the earlier. */
export function summarizeCommitted(envelopes: readonly Envelope[]): CommittedBatch[] {
  const byTenant = new Map<
    string,
    {
      series: Map<string, Extremes>;
      positions: PositionPoint[];
      devices: Map<string, { lastTs: number; receivedAt: number }>;
    }
  >();
  for (const env of envelopes) {
    let t = byTenant.get(env.tenant);
    if (!t) byTenant.set(env.tenant, (t = { series: new Map(), positions: [], devices: new Map() }));
    const rx = env.receivedAt;
    for (const r of env.readings) {
      const d = t.devices.get(r.deviceId);
      if (!d) t.devices.set(r.deviceId, { lastTs: r.ts, receivedAt: rx });
      else {
        d.lastTs = Math.max(d.lastTs, r.ts);
        d.receivedAt = Math.max(d.receivedAt, rx);
      }
      if (r.lat !== null && r.lon !== null)
        t.positions.push({
          deviceId: r.deviceId,
          ts: r.ts,
          lat: r.lat,
          lon: r.lon,
          eventId: r.eventId,
          receivedAt: rx,
        });
      if (!r.metrics) continue;
      for (const [metric, value] of Object.entries(r.metrics)) {
        const key = `${r.deviceId}\u0000${metric}`;
        const point: SeriesPoint = {
          deviceId: r.deviceId,
          metric,
          ts: r.ts,
          value,
          eventId: r.eventId,
          receivedAt: rx,
        };
        const prev = t.series.get(key);
        if (!prev) {
          t.series.set(key, { latest: point, max: point, min: point });
          continue;
        }
        if (point.ts >= prev.latest.ts) prev.latest = point;
        if (value > prev.max.value) prev.max = point;
        if (value < prev.min.value) prev.min = point;
      }
    }
  }
  return [...byTenant].map(([tenant, t]) => ({
    tenant,
    series: [...t.series.values()].flatMap(seriesPoints),
    positions: dedupePositions(t.positions),
    devices: [...t.devices].map(([deviceId, d]) => ({ deviceId, ...d })),
  }));
}

/** The distinct points of a series, in time order; the latest last among equal times (a reading at the time of one evaluated before is stale). */
function seriesPoints({ latest, max, min }: Extremes): SeriesPoint[] {
  const points: SeriesPoint[] = [];
  if (max.value !== latest.value) points.push(max);
  if (min.value !== latest.value && min !== max) points.push(min);
  points.push(latest);
  return points.sort((a, b) => a.ts - b.ts); // stable
}

function dedupePositions(positions: PositionPoint[]): PositionPoint[] {
  const seen = new Set<string>();
  return positions
    .filter((p) => !seen.has(p.eventId) && seen.add(p.eventId))
    .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.ts - b.ts));
}

export function encodeCommitted(b: CommittedBatch): string {
  return JSON.stringify({
    v: 1,
    t: b.tenant,
    s: b.series.map((x) => [x.deviceId, x.metric, x.ts, x.value, x.eventId, x.receivedAt]),
    p: b.positions.map((x) => [x.deviceId, x.ts, x.lat, x.lon, x.eventId, x.receivedAt]),
    d: b.devices.map((x) => [x.deviceId, x.lastTs, x.receivedAt]),
  });
}

export function decodeCommitted(body: string): CommittedBatch {
  const raw = JSON.parse(body) as { v: number; t: string; s: unknown[][]; p: unknown[][]; d: unknown[][] };
  if (
    raw.v !== 1 ||
    typeof raw.t !== "string" ||
    !Array.isArray(raw.s) ||
    !Array.isArray(raw.p) ||
    !Array.isArray(raw.d)
  ) {
    throw new Error("not a v1 committed-batch event");
  }
  return {
    tenant: raw.t,
    series: raw.s.map(
      ([deviceId, metric, ts, value, eventId, rx]) =>
        ({ deviceId, metric, ts, value, eventId, receivedAt: rx ?? ts }) as SeriesPoint,
    ),
    positions: raw.p.map(
      ([deviceId, ts, lat, lon, eventId, rx]) =>
        ({ deviceId, ts, lat, lon, eventId, receivedAt: rx ?? ts }) as PositionPoint,
    ),
    devices: raw.d.map(
      ([deviceId, lastTs, rx]) => ({ deviceId, lastTs, receivedAt: rx ?? lastTs }) as CommittedBatch["devices"][number],
    ),
  };
}

/**
 * A summary too big for one broker message (nats-server's max_payload is 1 MiB by default: 2,000
 * readings with 100 metrics each make ~18 MB) is cut into several, by device, so each device's
 * points stay together and in order. Deterministic: the same summary is always cut the same way.
 */
export function splitCommitted(b: CommittedBatch, maxBytes: number): CommittedBatch[] {
  if (Buffer.byteLength(encodeCommitted(b)) <= maxBytes) return [b];
  const devices = [
    ...new Set([
      ...b.series.map((s) => s.deviceId),
      ...b.positions.map((p) => p.deviceId),
      ...b.devices.map((d) => d.deviceId),
    ]),
  ];
  if (devices.length <= 1) return [b]; // one device's points in one batch: at most 3 per metric and its positions
  const first = new Set(devices.slice(0, Math.ceil(devices.length / 2)));
  const part = (inFirst: boolean): CommittedBatch => ({
    tenant: b.tenant,
    series: b.series.filter((x) => first.has(x.deviceId) === inFirst),
    positions: b.positions.filter((x) => first.has(x.deviceId) === inFirst),
    devices: b.devices.filter((x) => first.has(x.deviceId) === inFirst),
  });
  return [...splitCommitted(part(true), maxBytes), ...splitCommitted(part(false), maxBytes)];
}

/** Nats-Msg-Id of a summary: the same batch content gives the same id, so a republish is dropped. */
export function committedMessageId(b: CommittedBatch): string {
  const h = createHash("sha256").update(b.tenant);
  for (const s of b.series) h.update(`|${s.eventId}:${s.metric}`);
  for (const p of b.positions) h.update(`|${p.eventId}`);
  // Parts of one batch with only device entries must not share an id (and be dropped as duplicates).
  for (const d of b.devices) h.update(`|d:${d.deviceId}:${d.lastTs}`);
  return h.digest("hex").slice(0, 32);
}
