/**
 * What the tracker decoders (OsmAnd / Traccar Client, OwnTracks) share: their result type, the
 * names and units of the metrics they produce, and small strict value parsers. Pure.
 *
 * A decoder only translates a wire format into records (`RecordInput`, what normalizeRecord
 * takes); normalizeRecord still validates the device id, the timestamp's bounds, lat/lon ranges,
 * names and limits. Decoders report only what their own format makes wrong, in their own names.
 */
import type { AttributeValue, FieldError, RecordInput } from "../record.ts";

export type DecodeResult = { ok: true; records: RecordInput[] } | { ok: false; errors: FieldError[] };

/** Metric names shared by every tracker protocol, with one unit each (docs/decisions/0410). */
export const TRACKER_METRICS = {
  /** km/h */
  speed: "speed",
  /** degrees clockwise from true north */
  heading: "heading",
  /** metres above sea level */
  altitude: "altitude",
  /** metres (horizontal) */
  accuracy: "accuracy",
  /** percent 0..100 */
  battery: "battery",
} as const;

export const KNOTS_TO_KMH = 1.852;
export const MPS_TO_KMH = 3.6;

/** Epoch seconds below this are seconds, at or above it milliseconds (Traccar's rule: 2^31 - 1). */
export const SECONDS_LIMIT = 2_147_483_647;

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A strict decimal number ("12", "-3.5", "1e3"); null for anything else (hex, "NaN", "", " 1"). */
export function parseDecimal(text: string): number | null {
  if (text.length > 64 || !DECIMAL.test(text)) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

export function fail(path: string, message: string): DecodeResult {
  return { ok: false, errors: [{ path, message }] };
}

/** Rounds a converted value so 1 knot is 1.852 km/h, not 1.8519999999999999. */
export function round6(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/** Sets an own, enumerable property even for `__proto__`, so normalizeRecord sees (and refuses) the name. */
function put<T>(target: Record<string, T>, name: string, value: T): void {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
}

/** A record's parts being assembled; decoded fields are set first and extras never overwrite them. */
export class RecordBuilder {
  readonly metrics: Record<string, number> = {};
  readonly attributes: Record<string, AttributeValue> = {};
  private readonly taken = new Set<string>();

  metric(name: string, value: number | null | undefined): void {
    if (value === null || value === undefined) return;
    put(this.metrics, name, value);
    this.taken.add(name);
  }

  attribute(name: string, value: AttributeValue | undefined): void {
    if (value === undefined) return;
    put(this.attributes, name, value);
    this.taken.add(name);
  }

  /** An extra field: a number becomes a metric, a string or boolean an attribute; a decoded name wins. */
  extra(name: string, value: unknown): void {
    if (this.taken.has(name) || Object.hasOwn(this.metrics, name) || Object.hasOwn(this.attributes, name)) return;
    if (typeof value === "number" && Number.isFinite(value)) put(this.metrics, name, value);
    else if (typeof value === "string" || typeof value === "boolean") put(this.attributes, name, value);
  }

  build(deviceId: string, ts: number | string, location: { lat: number; lon: number } | null): RecordInput {
    const rec: RecordInput = { device_id: deviceId, ts };
    if (location) rec.location = location;
    if (Object.keys(this.metrics).length > 0) rec.metrics = this.metrics;
    if (Object.keys(this.attributes).length > 0) rec.attributes = this.attributes;
    return rec;
  }
}
