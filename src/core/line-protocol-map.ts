/**
 * Line-protocol points -> the project's records (the input of normalizeRecord). Pure.
 *
 *  - device_id: the first of `deviceTags` (default `device`, then `host`) the point has; a point
 *    with none is an error of its line. That tag is the identity; every other tag is an attribute.
 *  - metrics: every float, integer, unsigned and boolean field (booleans as 0/1), named
 *    `{measurement}_{field}`, or `{field}` for a measurement listed in `bareMeasurements`.
 *    Integers become JS numbers (float64): beyond 2^53 they are rounded to the nearest double.
 *  - string fields: attributes, named like metrics.
 *  - location: the first of `latFields` and of `lonFields` (numeric fields, both or neither).
 *  - ts: the point's epoch milliseconds (nanoseconds floored to milliseconds).
 * Points of one device at one millisecond become ONE record (an event id is tenant, device,
 * time and location, so two records there would be one reading): Telegraf writes `cpu` and `mem`
 * of a host with one timestamp. A point that would give an already set metric, attribute or
 * location of that record another value is an error of its line, and none of it is used.
 */
import type { FieldValue, LineError, LinePoint } from "./line-protocol.ts";

export interface LineMapping {
  deviceTags: readonly string[];
  bareMeasurements: readonly string[];
  latFields: readonly string[];
  lonFields: readonly string[];
}

export const DEFAULT_LINE_MAPPING: LineMapping = Object.freeze({
  deviceTags: Object.freeze(["device", "host"]),
  bareMeasurements: Object.freeze([]),
  latFields: Object.freeze(["lat", "latitude"]),
  lonFields: Object.freeze(["lon", "lng", "longitude"]),
});

/** A record as JSON would carry it, ready for normalizeRecord. */
export interface LineRecord {
  device_id: string;
  ts: number;
  location?: { lat: number; lon: number };
  metrics?: Record<string, number>;
  attributes?: Record<string, string>;
}

export interface MappedRecord {
  /** The line numbers the record was made of, in order. */
  lines: number[];
  record: LineRecord;
}

export interface MapResult {
  records: MappedRecord[];
  errors: LineError[];
}

export interface MappedPoint {
  line: number;
  deviceId: string;
  ms: number;
  location: { lat: number; lon: number } | null;
  metrics: Map<string, number>;
  attributes: Map<string, string>;
}

interface Group {
  lines: number[];
  deviceId: string;
  ms: number;
  location: { lat: number; lon: number; line: number } | null;
  metrics: Map<string, { value: number; line: number }>;
  attributes: Map<string, { value: string; line: number }>;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; message: string };

function numeric(value: FieldValue): number | null {
  if (value.type === "float") return value.value;
  if (value.type === "integer" || value.type === "unsigned") return Number(value.value);
  if (value.type === "boolean") return value.value ? 1 : 0;
  return null;
}

function list(names: readonly string[]): string {
  return names.map((n) => `'${n}'`).join(", ");
}

function locationOf(p: LinePoint, m: LineMapping): Outcome<{ lat: number; lon: number } | null> {
  const latField = p.fields.find(([k]) => m.latFields.includes(k));
  const lonField = p.fields.find(([k]) => m.lonFields.includes(k));
  if (!latField && !lonField) return { ok: true, value: null };
  if (!latField) return { ok: false, message: `field '${lonField![0]}' is a longitude without a latitude field` };
  if (!lonField) return { ok: false, message: `field '${latField[0]}' is a latitude without a longitude field` };
  const lat = latField[1].type === "boolean" ? null : numeric(latField[1]);
  const lon = lonField[1].type === "boolean" ? null : numeric(lonField[1]);
  if (lat === null) return { ok: false, message: `field '${latField[0]}' must be a number to be a latitude` };
  if (lon === null) return { ok: false, message: `field '${lonField[0]}' must be a number to be a longitude` };
  return { ok: true, value: { lat, lon } };
}

/** The reading of one point, or why it has none. */
export function mapPoint(p: LinePoint, m: LineMapping = DEFAULT_LINE_MAPPING): Outcome<MappedPoint> {
  const identity = m.deviceTags.find((name) => p.tags.some(([k]) => k === name));
  if (identity === undefined) {
    return { ok: false, message: `point '${p.measurement}' has no device tag (one of ${list(m.deviceTags)})` };
  }
  const location = locationOf(p, m);
  if (!location.ok) return location;
  const bare = m.bareMeasurements.includes(p.measurement);
  const metrics = new Map<string, number>();
  const attributes = new Map<string, string>();
  let deviceId = "";
  for (const [k, v] of p.tags) {
    if (k === identity) deviceId = v;
    else attributes.set(k, v);
  }
  for (const [k, v] of p.fields) {
    if (location.value && (m.latFields.includes(k) || m.lonFields.includes(k))) continue;
    const name = bare ? k : `${p.measurement}_${k}`;
    const n = numeric(v);
    if (n !== null) metrics.set(name, n);
    else if (attributes.has(name))
      return { ok: false, message: `string field '${k}' and tag '${name}' are both attribute '${name}'` };
    else attributes.set(name, (v as { value: string }).value);
  }
  return { ok: true, value: { line: p.line, deviceId, ms: p.ms, location: location.value, metrics, attributes } };
}

/** Why `r` cannot join `g`, or null. */
function conflict(g: Group, r: MappedPoint): string | null {
  const at = `of device '${r.deviceId}' at epoch ms ${r.ms}`;
  if (g.location && r.location && (g.location.lat !== r.location.lat || g.location.lon !== r.location.lon)) {
    return `location ${at} is already set to another value by line ${g.location.line}`;
  }
  for (const [name, value] of r.metrics) {
    const had = g.metrics.get(name);
    if (had && !Object.is(had.value, value))
      return `metric '${name}' ${at} is already set to another value by line ${had.line}`;
  }
  for (const [name, value] of r.attributes) {
    const had = g.attributes.get(name);
    if (had && had.value !== value)
      return `attribute '${name}' ${at} is already set to another value by line ${had.line}`;
  }
  return null;
}

function join(g: Group, r: MappedPoint): void {
  g.lines.push(r.line);
  if (r.location && !g.location) g.location = { ...r.location, line: r.line };
  for (const [name, value] of r.metrics) if (!g.metrics.has(name)) g.metrics.set(name, { value, line: r.line });
  for (const [name, value] of r.attributes)
    if (!g.attributes.has(name)) g.attributes.set(name, { value, line: r.line });
}

function toRecord(g: Group): MappedRecord {
  const record: LineRecord = { device_id: g.deviceId, ts: g.ms };
  if (g.location) record.location = { lat: g.location.lat, lon: g.location.lon };
  // Object.fromEntries makes own properties even of '__proto__', which normalizeRecord then refuses by name.
  if (g.metrics.size > 0) record.metrics = Object.fromEntries([...g.metrics].map(([k, v]) => [k, v.value]));
  if (g.attributes.size > 0) record.attributes = Object.fromEntries([...g.attributes].map(([k, v]) => [k, v.value]));
  return { lines: g.lines, record };
}

/** Maps parsed points to records, in the order of their first lines, and the errors of the points that map to none. */
export function mapPoints(points: readonly LinePoint[], m: LineMapping = DEFAULT_LINE_MAPPING): MapResult {
  const groups = new Map<string, Group>();
  const errors: LineError[] = [];
  for (const p of points) {
    const mapped = mapPoint(p, m);
    if (!mapped.ok) {
      errors.push({ line: p.line, message: mapped.message });
      continue;
    }
    const r = mapped.value;
    const key = `${r.deviceId}\u0000${r.ms}`;
    let g = groups.get(key);
    if (!g) {
      g = { lines: [], deviceId: r.deviceId, ms: r.ms, location: null, metrics: new Map(), attributes: new Map() };
      groups.set(key, g);
    }
    const why = conflict(g, r);
    if (why) errors.push({ line: p.line, message: why });
    else join(g, r);
  }
  return { records: [...groups.values()].filter((g) => g.lines.length > 0).map(toRecord), errors };
}
