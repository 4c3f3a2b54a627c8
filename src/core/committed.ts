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
import type { Reading } from "./record.ts";

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

/**
 * The points kept of one (device, metric) series in a batch, as fields rather than one object per
 * reading and metric (the writer summarizes every batch: a point object per reading and metric was
 * most of its garbage). `k`: the reading's place in the batch, a point's identity.
 */
interface Extremes {
  metric: string;
  deviceId: string;
  lK: number;
  lTs: number;
  lV: number;
  lId: string;
  lRx: number;
  xK: number;
  xTs: number;
  xV: number;
  xId: string;
  xRx: number;
  nK: number;
  nTs: number;
  nV: number;
  nId: string;
  nRx: number;
}

function newExtremes(metric: string, k: number, r: Reading, v: number, rx: number): Extremes {
  const { deviceId, ts, eventId: id } = r;
  return {
    metric,
    deviceId,
    lK: k,
    lTs: ts,
    lV: v,
    lId: id,
    lRx: rx,
    xK: k,
    xTs: ts,
    xV: v,
    xId: id,
    xRx: rx,
    nK: k,
    nTs: ts,
    nV: v,
    nId: id,
    nRx: rx,
  };
}

/** A later reading of the series: the latest on ties of time, the first on ties of value. */
function track(e: Extremes, k: number, r: Reading, v: number, rx: number): void {
  if (r.ts >= e.lTs) {
    e.lK = k;
    e.lTs = r.ts;
    e.lV = v;
    e.lId = r.eventId;
    e.lRx = rx;
  }
  if (v > e.xV) {
    e.xK = k;
    e.xTs = r.ts;
    e.xV = v;
    e.xId = r.eventId;
    e.xRx = rx;
  }
  if (v < e.nV) {
    e.nK = k;
    e.nTs = r.ts;
    e.nV = v;
    e.nId = r.eventId;
    e.nRx = rx;
  }
}

/** Summarizes a batch per tenant. Ties on time keep the later reading in batch order; ties on value the earlier. */
export function summarizeCommitted(envelopes: readonly Envelope[]): CommittedBatch[] {
  const byTenant = new Map<
    string,
    {
      /** Device → metric → its extremes; `order` keeps the series in first-appearance order. */
      series: Map<string, Map<string, Extremes>>;
      order: Extremes[];
      positions: PositionPoint[];
      devices: Map<string, { lastTs: number; receivedAt: number }>;
    }
  >();
  let k = 0;
  for (const env of envelopes) {
    let t = byTenant.get(env.tenant);
    if (!t) byTenant.set(env.tenant, (t = { series: new Map(), order: [], positions: [], devices: new Map() }));
    const rx = env.receivedAt;
    for (const r of env.readings) {
      k++;
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
      let byMetric = t.series.get(r.deviceId);
      if (!byMetric) t.series.set(r.deviceId, (byMetric = new Map()));
      const m = r.metrics;
      for (const metric in m) {
        const value = m[metric]!;
        const e = byMetric.get(metric);
        if (e) track(e, k, r, value, rx);
        else {
          const first = newExtremes(metric, k, r, value, rx);
          byMetric.set(metric, first);
          t.order.push(first);
        }
      }
    }
  }
  return [...byTenant].map(([tenant, t]) => ({
    tenant,
    series: t.order.flatMap(seriesPoints),
    positions: dedupePositions(t.positions),
    devices: [...t.devices].map(([deviceId, d]) => ({ deviceId, ...d })),
  }));
}

/** The distinct points of a series, in time order; the latest last among equal times (a reading at the time of one evaluated before is stale). */
function seriesPoints(e: Extremes): SeriesPoint[] {
  const { deviceId, metric } = e;
  const points: SeriesPoint[] = [];
  if (e.xV !== e.lV) points.push({ deviceId, metric, ts: e.xTs, value: e.xV, eventId: e.xId, receivedAt: e.xRx });
  if (e.nV !== e.lV && e.nK !== e.xK)
    points.push({ deviceId, metric, ts: e.nTs, value: e.nV, eventId: e.nId, receivedAt: e.nRx });
  points.push({ deviceId, metric, ts: e.lTs, value: e.lV, eventId: e.lId, receivedAt: e.lRx });
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
  return committedEvents(b, maxBytes).map((e) => e.batch);
}

/** What the writer publishes for a summary: each part (splitCommitted) with its body and message id, each encoded once. */
export interface CommittedEvent {
  batch: CommittedBatch;
  body: string;
  msgId: string;
}

export function committedEvents(b: CommittedBatch, maxBytes: number): CommittedEvent[] {
  const body = encodeCommitted(b);
  if (Buffer.byteLength(body) <= maxBytes) return [{ batch: b, body, msgId: committedMessageId(b) }];
  const devices = [
    ...new Set([
      ...b.series.map((s) => s.deviceId),
      ...b.positions.map((p) => p.deviceId),
      ...b.devices.map((d) => d.deviceId),
    ]),
  ];
  // One device's points in one batch: at most 3 per metric and its positions.
  if (devices.length <= 1) return [{ batch: b, body, msgId: committedMessageId(b) }];
  const first = new Set(devices.slice(0, Math.ceil(devices.length / 2)));
  const part = (inFirst: boolean): CommittedBatch => ({
    tenant: b.tenant,
    series: b.series.filter((x) => first.has(x.deviceId) === inFirst),
    positions: b.positions.filter((x) => first.has(x.deviceId) === inFirst),
    devices: b.devices.filter((x) => first.has(x.deviceId) === inFirst),
  });
  return [...committedEvents(part(true), maxBytes), ...committedEvents(part(false), maxBytes)];
}

/**
 * Nats-Msg-Id of a summary: the same batch content gives the same id, so a republish is dropped.
 * SHA-256 of tenant, then `|{event id}:{metric}` per series point and `|{event id}` per position,
 * hashed as one string (the same digest as feeding the pieces one by one, at one native call).
 */
export function committedMessageId(b: CommittedBatch): string {
  let text = b.tenant;
  for (const s of b.series) text += `|${s.eventId}:${s.metric}`;
  for (const p of b.positions) text += `|${p.eventId}`;
  // Parts of one batch with only device entries must not share an id (and be dropped as duplicates).
  for (const d of b.devices) text += `|d:${d.deviceId}:${d.lastTs}`;
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}
