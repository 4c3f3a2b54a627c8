/**
 * Line-protocol points -> the project's records (the input of normalizeRecord). Pure.
 *
 *  - device_id: the first of `deviceTags` (default `device`, then `host`) the point has; a point
 *    with none is an error of its line. That tag is the identity; every other tag is an attribute.
 *  - metrics: every float, integer, unsigned and boolean field (booleans as 0/1), named
 *    `{measurement}_{field}`, or `{field}` for a measurement listed in `bareMeasurements`; with
 *    the values of the point's `seriesTags` (in their listed order) appended, each after a `.`:
 *    `cpu,host=a,cpu=cpu0 usage_user=1` with seriesTags [cpu] is `cpu_usage_user.cpu0`.
 *    Integers become JS numbers (float64): beyond 2^53 they are rounded to the nearest double.
 *  - string fields: attributes, named like metrics.
 *  - location: the first of `latFields` and of `lonFields` (numeric fields, both or neither).
 *  - ts: the point's epoch milliseconds (nanoseconds floored to milliseconds).
 * One line is one record (decision 0430). Its event id is the JSON one extended with the
 * measurement and the sorted field keys (lineIdentity), so Telegraf's `cpu` and `mem` lines of a
 * host at one timestamp are two readings, in one request or split over two; lines with the same
 * device, millisecond, location, measurement and field keys are one reading (the later one is a
 * duplicate, as in JSON), so a batch sent again makes no new rows; such a line with other values
 * in the same request is an error of its line (see mapPoints). Series tags (off by default) are
 * part of the identity too: `cpu=cpu0` and `cpu=cpu1` lines of one host are two readings.
 */
import type { FieldValue, LineError, LinePoint } from "./line-protocol.ts";

export interface LineMapping {
  deviceTags: readonly string[];
  bareMeasurements: readonly string[];
  latFields: readonly string[];
  lonFields: readonly string[];
  /** Tags whose values are part of the metric names and the identity (per-CPU, per-disk series). */
  seriesTags: readonly string[];
}

export const DEFAULT_LINE_MAPPING: LineMapping = Object.freeze({
  deviceTags: Object.freeze(["device", "host"]),
  bareMeasurements: Object.freeze([]),
  latFields: Object.freeze(["lat", "latitude"]),
  lonFields: Object.freeze(["lon", "lng", "longitude"]),
  seriesTags: Object.freeze([]),
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

/** A mapping's name lists as Sets (Array.prototype.includes on the frozen default lists is slow). */
interface Compiled {
  lat: Set<string>;
  lon: Set<string>;
  bare: Set<string>;
}
const compiledOf = new WeakMap<LineMapping, Compiled>();
function compiled(m: LineMapping): Compiled {
  let c = compiledOf.get(m);
  if (!c) {
    c = { lat: new Set(m.latFields), lon: new Set(m.lonFields), bare: new Set(m.bareMeasurements) };
    compiledOf.set(m, c);
  }
  return c;
}

/** The first field whose key is one of `names`, or undefined. */
function firstField(p: LinePoint, names: Set<string>): [string, FieldValue] | undefined {
  for (const f of p.fields) if (names.has(f[0])) return f;
  return undefined;
}

function locationOf(p: LinePoint, m: Compiled): Outcome<{ lat: number; lon: number } | null> {
  const latField = firstField(p, m.lat);
  const lonField = firstField(p, m.lon);
  if (!latField && !lonField) return NO_LOCATION;
  if (!latField) return { ok: false, message: `field '${lonField![0]}' is a longitude without a latitude field` };
  if (!lonField) return { ok: false, message: `field '${latField[0]}' is a latitude without a longitude field` };
  const lat = latField[1].type === "boolean" ? null : numeric(latField[1]);
  const lon = lonField[1].type === "boolean" ? null : numeric(lonField[1]);
  if (lat === null) return { ok: false, message: `field '${latField[0]}' must be a number to be a latitude` };
  if (lon === null) return { ok: false, message: `field '${lonField[0]}' must be a number to be a longitude` };
  return { ok: true, value: { lat, lon } };
}
const NO_LOCATION = Object.freeze({ ok: true, value: null }) as Outcome<null>;

/** Sets an own property, `__proto__` too (which normalizeRecord then refuses by name). */
function put<T>(o: Record<string, T>, k: string, v: T): void {
  if (k === "__proto__")
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** The point's [tag, value] of each series tag it has, in the mapping's order; none: undefined. */
function seriesOf(p: LinePoint, m: LineMapping): Array<[string, string]> | undefined {
  let out: Array<[string, string]> | undefined;
  for (const name of m.seriesTags) for (const t of p.tags) if (t[0] === name) (out ??= []).push(t);
  return out;
}

/** The record of one point, or why it has none. Plain objects, built once (no Maps copied). */
export function mapPoint(p: LinePoint, m: LineMapping = DEFAULT_LINE_MAPPING): Outcome<LineRecord> {
  let identity: string | undefined;
  for (const name of m.deviceTags) {
    for (const t of p.tags) if (t[0] === name) identity = name;
    if (identity !== undefined) break;
  }
  if (identity === undefined) {
    return { ok: false, message: `point '${p.measurement}' has no device tag (one of ${list(m.deviceTags)})` };
  }
  const c = compiled(m);
  const location = locationOf(p, c);
  if (!location.ok) return location;
  const bare = c.bare.has(p.measurement);
  const series = m.seriesTags.length > 0 ? seriesOf(p, m) : undefined;
  const suffix = series ? `.${series.map((t) => t[1]).join(".")}` : "";
  let metrics: Record<string, number> | undefined;
  let attributes: Record<string, string> | undefined;
  let deviceId = "";
  for (const [k, v] of p.tags) {
    if (k === identity) deviceId = v;
    else put((attributes ??= {}), k, v);
  }
  for (const [k, v] of p.fields) {
    if (location.value && (c.lat.has(k) || c.lon.has(k))) continue;
    const name = bare ? k : `${p.measurement}_${k}`;
    const n = numeric(v);
    if (n !== null) put((metrics ??= {}), name + suffix, n);
    else if (attributes && Object.hasOwn(attributes, name))
      return { ok: false, message: `string field '${k}' and tag '${name}' are both attribute '${name}'` };
    else put((attributes ??= {}), name, (v as { value: string }).value);
  }
  const record: LineRecord = { device_id: deviceId, ts: p.ms };
  if (location.value) record.location = location.value;
  if (metrics) record.metrics = metrics;
  if (attributes) record.attributes = attributes;
  return { ok: true, value: record };
}

/** Escapes the separators of the identity suffix, so that distinct names never give one suffix. */
const SEPARATORS = /[%|,]/;
const part = (name: string) =>
  SEPARATORS.test(name) ? name.replaceAll("%", "%25").replaceAll("|", "%7C").replaceAll(",", "%2C") : name;
/** The same for a series tag's name or value, `=` too (written %3D). */
const seriesPart = (name: string) => part(name).replaceAll("=", "%3D");

/**
 * The event-id suffix of a line (core/event-id.ts): `lp|{measurement}|{field keys}`, the keys
 * sorted (by UTF-16 code units) and joined by ","; `%`, `|` and `,` in names written %25, %7C, %2C.
 * Every field key counts, the location's too. Tags other than the device tag do not.
 */
export function lineIdentity(p: LinePoint): string {
  const keys = p.fields.map(([k]) => part(k)).sort();
  return `lp|${part(p.measurement)}|${keys.join(",")}`;
}

/**
 * The identity's series part: `|{tag}={value},…` for the series tags the point has, in the
 * mapping's order (`=` written %3D too); "" when it has none, so the ids of lines without series
 * tags, and of every line when none are set, are unchanged.
 */
export function seriesIdentity(p: LinePoint, m: LineMapping): string {
  const series = m.seriesTags.length > 0 ? seriesOf(p, m) : undefined;
  return series ? `|${series.map(([k, v]) => `${seriesPart(k)}=${seriesPart(v)}`).join(",")}` : "";
}

/** Whether two points have the same measurement and field keys in the same order (then the same identity). */
function sameShape(a: LinePoint, b: LinePoint): boolean {
  if (a.measurement !== b.measurement || a.fields.length !== b.fields.length) return false;
  for (let k = 0; k < a.fields.length; k++) if (a.fields[k]![0] !== b.fields[k]![0]) return false;
  return true;
}

/** Readings of one device, millisecond and identity: usually one; by location string past a few. */
interface Bucket {
  records: MappedRecord[];
  byLocation?: Map<string, MappedRecord>;
}
const LINEAR = 8;
const SHAPES = 4;
const locationKey = (r: LineRecord) => (r.location ? `${r.location.lat},${r.location.lon}` : "");
const sameLocation = (a: LineRecord, b: LineRecord) =>
  a.location === undefined
    ? b.location === undefined
    : b.location !== undefined && a.location.lat === b.location.lat && a.location.lon === b.location.lon;

/** The earlier record of the same reading (device, millisecond, location, identity) in `bucket`. */
function firstOf(bucket: Bucket, record: LineRecord): MappedRecord | undefined {
  if (bucket.byLocation) return bucket.byLocation.get(locationKey(record));
  for (const r of bucket.records) if (sameLocation(r.record, record)) return r;
  return undefined;
}

function remember(bucket: Bucket, r: MappedRecord): void {
  if (bucket.byLocation) {
    bucket.byLocation.set(locationKey(r.record), r);
    return;
  }
  bucket.records.push(r);
  if (bucket.records.length > LINEAR)
    bucket.byLocation = new Map(bucket.records.map((x) => [locationKey(x.record), x] as const));
}

/**
 * Maps parsed points to records, one per point in order, and the errors of the points that map to
 * none. A point that is the same reading as an earlier one of the request (device, millisecond,
 * location, measurement and field keys) with other values is an error of its line: its event id
 * would make it a duplicate, silently dropped (Telegraf's per-CPU `cpu` lines of one host).
 * The same line again is kept, and admitted as a duplicate. Lines of a shape seen among the last
 * few (Telegraf's and the bench's) reuse its identity.
 */
export function mapPoints(points: readonly LinePoint[], m: LineMapping = DEFAULT_LINE_MAPPING): MapResult {
  const records: MappedRecord[] = [];
  const errors: LineError[] = [];
  const seen = new Map<string, Bucket>();
  /** The identities of the last shapes seen (the bench alternates two). */
  const shapes: Array<{ p: LinePoint; identity: string }> = [];
  for (const p of points) {
    const mapped = mapPoint(p, m);
    if (!mapped.ok) {
      errors.push({ line: p.line, message: mapped.message });
      continue;
    }
    let identity = shapes.find((x) => sameShape(x.p, p))?.identity;
    if (identity === undefined) {
      identity = lineIdentity(p);
      shapes.unshift({ p, identity });
      if (shapes.length > SHAPES) shapes.pop();
    }
    identity += seriesIdentity(p, m);
    const record = mapped.value;
    const key = `${record.device_id}\u0000${record.ts}\u0000${identity}`;
    let bucket = seen.get(key);
    const first = bucket && firstOf(bucket, record);
    if (first && !sameValues(first.record, record)) {
      errors.push({ line: p.line, message: sameReading(p, first.line) });
      continue;
    }
    const mappedRecord = { line: p.line, identity, record };
    if (!first) {
      if (!bucket) seen.set(key, (bucket = { records: [] }));
      remember(bucket, mappedRecord);
    }
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
  return `point '${p.measurement}' is the reading of line ${line} (same device, time, measurement and field keys) with other values: tags other than the device tag are attributes, not part of a reading's identity, unless they are series tags (line_protocol.series_tags)`;
}
