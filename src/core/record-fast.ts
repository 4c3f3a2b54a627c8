/**
 * The common case of record validation without zod: a plain record with a valid device id, a
 * string or number ts, an optional {lat, lon} in range and optional metrics. It returns exactly
 * what `recordSchema` would (same fields, same values) or `undefined` for anything else (an error
 * or something less common, e.g. attributes), and the caller then asks zod, which also words the
 * errors. Zod's parse was the largest single cost of ingest (~14 % of the server's CPU under
 * batched load); test/unit/record-fast checks the two agree.
 */
import { DEVICE_ID_PATTERN, MAX_METRICS, METRIC_NAME_PATTERN, metricInRange, RESERVED_NAMES } from "./record-limits.ts";

export interface FastRecord {
  device_id: string;
  ts: string | number;
  location?: { lat: number; lon: number };
  metrics?: Record<string, number>;
  attributes?: undefined;
}

const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;

export function fastRecord(input: unknown): FastRecord | undefined {
  if (!isPlain(input)) return undefined;
  let device_id: unknown, ts: unknown, location: unknown, metrics: unknown;
  for (const key in input) {
    const v = input[key];
    if (key === "device_id") device_id = v;
    else if (key === "ts") ts = v;
    else if (key === "location") location = v;
    else if (key === "metrics") metrics = v;
    else return undefined; // attributes, unknown fields
  }
  if (typeof device_id !== "string" || !DEVICE_ID_PATTERN.test(device_id)) return undefined;
  if (typeof ts !== "string" && typeof ts !== "number") return undefined;
  const out: FastRecord = { device_id, ts };
  if (location !== undefined) {
    if (!isPlain(location)) return undefined;
    let n = 0;
    for (const _ in location) n++;
    const { lat, lon } = location;
    if (n !== 2 || typeof lat !== "number" || typeof lon !== "number") return undefined;
    if (!(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180)) return undefined; // NaN fails too
    out.location = location as { lat: number; lon: number }; // exactly {lat, lon}: no copy needed
  }
  if (metrics !== undefined) {
    if (!isPlain(metrics)) return undefined;
    let n = 0;
    for (const name in metrics) {
      const v = metrics[name];
      if (
        ++n > MAX_METRICS ||
        RESERVED_NAMES.has(name) ||
        !METRIC_NAME_PATTERN.test(name) ||
        typeof v !== "number" ||
        !metricInRange(v)
      )
        return undefined;
    }
    out.metrics = metrics as Record<string, number>;
  }
  return out;
}
