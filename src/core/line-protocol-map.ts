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
 * One line is one record (decision 0430). Its event id is the JSON one extended with the
 * measurement and the sorted field keys (lineIdentity), so Telegraf's `cpu` and `mem` lines of a
 * host at one timestamp are two readings, in one request or split over two; lines with the same
 * device, millisecond, location, measurement and field keys are one reading (the later one is a
 * duplicate, as in JSON), so a batch sent again makes no new rows; such a line with other values
 * in the same request is an error of its line (see mapPoints).
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
  /** The line the record was made of. */
  line: number;
  /** Its event id's suffix (lineIdentity). */
  identity: string;
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

/** Escapes the separators of the identity suffix, so that distinct names never give one suffix. */
const SEPARATORS = /[%|,]/;
const part = (name: string) =>
  SEPARATORS.test(name) ? name.replaceAll("%", "%25").replaceAll("|", "%7C").replaceAll(",", "%2C") : name;

/**
 * The event-id suffix of a line (core/event-id.ts): `lp|{measurement}|{field keys}`, the keys
 * sorted (by UTF-16 code units) and joined by ","; `%`, `|` and `,` in names written %25, %7C, %2C.
 * Every field key counts, the location's too. Tags other than the device tag do not.
 */
export function lineIdentity(p: LinePoint): string {
  const keys = p.fields.map(([k]) => part(k)).sort();
  return `lp|${part(p.measurement)}|${keys.join(",")}`;
}

function toRecord(r: MappedPoint): LineRecord {
  const record: LineRecord = { device_id: r.deviceId, ts: r.ms };
  if (r.location) record.location = r.location;
  // Object.fromEntries makes own properties even of '__proto__', which normalizeRecord then refuses by name.
  if (r.metrics.size > 0) record.metrics = Object.fromEntries(r.metrics);
  if (r.attributes.size > 0) record.attributes = Object.fromEntries(r.attributes);
  return record;
}

/**
 * Maps parsed points to records, one per point in order, and the errors of the points that map to
 * none. A point that is the same reading as an earlier one of the request (device, millisecond,
 * location, measurement and field keys) with other values is an error of its line: its event id
 * would make it a duplicate, silently dropped (Telegraf's per-CPU `cpu` lines of one host).
 * The same line again is kept, and admitted as a duplicate.
 */
export function mapPoints(points: readonly LinePoint[], m: LineMapping = DEFAULT_LINE_MAPPING): MapResult {
  const records: MappedRecord[] = [];
  const errors: LineError[] = [];
  const seen = new Map<string, MappedRecord>();
  for (const p of points) {
    const mapped = mapPoint(p, m);
    if (!mapped.ok) {
      errors.push({ line: p.line, message: mapped.message });
      continue;
    }
    const identity = lineIdentity(p);
    const record = toRecord(mapped.value);
    const loc = record.location;
    const reading = `${record.device_id}\u0000${record.ts}\u0000${loc ? `${loc.lat},${loc.lon}` : ""}\u0000${identity}`;
    const first = seen.get(reading);
    if (first && !sameValues(first.record, record)) {
      errors.push({ line: p.line, message: sameReading(p, first.line) });
      continue;
    }
    const mappedRecord = { line: p.line, identity, record };
    if (!first) seen.set(reading, mappedRecord);
    records.push(mappedRecord);
  }
  return { records, errors };
}

function sameEntries(a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => Object.hasOwn(b!, k) && Object.is(a![k], b![k]));
}

const sameValues = (a: LineRecord, b: LineRecord) =>
  sameEntries(a.metrics, b.metrics) && sameEntries(a.attributes, b.attributes);

function sameReading(p: LinePoint, line: number): string {
  return `point '${p.measurement}' is the reading of line ${line} (same device, time, measurement and field keys) with other values: tags other than the device tag are attributes, not part of a reading's identity`;
}
