/**
 * The OsmAnd protocol's query/form form, as sent by OsmAnd's online tracking and Traccar Client
 * before version 9: `?id=…&lat=…&lon=…&timestamp=…&speed=…`. Pure. Parameter handling follows
 * Traccar's OsmAndProtocolDecoder; units and names are documented in docs/protocols/osmand.md.
 */
import { parseRfc3339 } from "../timestamp.ts";
import {
  type DecodeResult,
  fail,
  KNOTS_TO_KMH,
  parseDecimal,
  RecordBuilder,
  round6,
  SECONDS_LIMIT,
  TRACKER_METRICS as M,
} from "./fields.ts";

/** More parameters than any client sends; the request is refused before any work per parameter. */
export const MAX_OSMAND_PARAMETERS = 200;

/** Parameters that are not readings: never stored (a push token is a credential). */
const DROPPED = new Set(["notificationToken", "key", "token"]);
/** Parameters read before the loop over the rest. */
const POSITION = new Set(["id", "deviceid", "timestamp", "lat", "lon", "location"]);

/** Named numeric parameters: metric name and the conversion from the wire unit. */
const NUMERIC: Record<string, { metric: string; scale?: number }> = {
  speed: { metric: M.speed, scale: KNOTS_TO_KMH },
  bearing: { metric: M.heading },
  heading: { metric: M.heading },
  altitude: { metric: M.altitude },
  accuracy: { metric: M.accuracy },
  hdop: { metric: "hdop" },
  batt: { metric: M.battery },
};

/**
 * The parameters of a request: the query's (`query` is the query string, with or without its
 * `?`, or the whole request target `/path?query`), or the form body's when the query has none (as
 * Traccar does). A repeated name keeps its last value.
 */
export function osmandParameters(query: string, formBody = ""): Map<string, string> {
  const mark = query.indexOf("?");
  const q = new URLSearchParams(mark >= 0 ? query.slice(mark + 1) : query);
  const source = [...q.keys()].length > 0 ? q : new URLSearchParams(formBody);
  const out = new Map<string, string>();
  for (const [name, value] of source) out.set(name, value);
  return out;
}

/** OsmAnd's `timestamp`: integer epoch seconds (< 2^31 - 1) or milliseconds, or ISO 8601 with an offset. */
export function parseOsmAndTimestamp(text: string): { ok: true; ms: number } | { ok: false; message: string } {
  if (/^\d{16,}$/.test(text)) return { ok: false, message: "epoch time out of range" };
  if (/^\d{1,15}$/.test(text)) {
    const n = Number(text);
    return { ok: true, ms: n < SECONDS_LIMIT ? n * 1000 : n };
  }
  if (/^[+-]?\d+(\.\d*)?$/.test(text)) {
    return { ok: false, message: "must be whole epoch seconds or milliseconds, or ISO 8601 with an offset" };
  }
  if (!/^\d{4}-\d{2}-\d{2}[Tt]/.test(text)) {
    return { ok: false, message: "must be epoch seconds, epoch milliseconds or ISO 8601 with an offset" };
  }
  const r = parseRfc3339(text);
  return r.ok ? r : { ok: false, message: r.message };
}

function parseLocation(params: ReadonlyMap<string, string>): DecodeResult | { lat: number; lon: number } | null {
  let latText = params.get("lat");
  let lonText = params.get("lon");
  const pair = params.get("location");
  if (pair !== undefined && latText === undefined && lonText === undefined) {
    const parts = pair.split(",");
    if (parts.length !== 2) return fail("location", "must be 'lat,lon'");
    [latText, lonText] = parts as [string, string];
  }
  if (latText === undefined && lonText === undefined) return null;
  if (latText === undefined) return fail("lat", "lon was sent without lat");
  if (lonText === undefined) return fail("lon", "lat was sent without lon");
  const lat = parseDecimal(latText);
  if (lat === null) return fail("lat", "must be a decimal number of degrees");
  const lon = parseDecimal(lonText);
  if (lon === null) return fail("lon", "must be a decimal number of degrees");
  return { lat, lon };
}

function addParameter(b: RecordBuilder, name: string, value: string): DecodeResult | null {
  const known = Object.hasOwn(NUMERIC, name) ? NUMERIC[name] : undefined; // not Object.prototype's __proto__
  if (known) {
    const n = parseDecimal(value);
    if (n === null) return fail(name, "must be a decimal number");
    b.metric(known.metric, known.scale ? round6(n * known.scale) : n);
  } else if (name === "valid") {
    b.attribute("valid", value.toLowerCase() === "true" || value === "1");
  } else if (name === "charge") {
    b.attribute("charging", value.toLowerCase() === "true");
  } else {
    const n = parseDecimal(value);
    b.extra(name, n ?? (value === "true" ? true : value === "false" ? false : value));
  }
  return null;
}

/**
 * Decodes one OsmAnd request into one record. `nowMs` is the receive time, used when the request
 * has no `timestamp` (as Traccar does). Without `lat`/`lon` the record carries metrics only.
 */
export function decodeOsmAnd(params: ReadonlyMap<string, string>, nowMs: number): DecodeResult {
  if (params.size > MAX_OSMAND_PARAMETERS) return fail("", `at most ${MAX_OSMAND_PARAMETERS} parameters`);
  const id = params.get("id") ?? params.get("deviceid");
  if (id === undefined || id === "") return fail("id", "the device id (id or deviceid) is required");
  let ts = nowMs;
  const tsText = params.get("timestamp");
  if (tsText !== undefined) {
    const t = parseOsmAndTimestamp(tsText);
    if (!t.ok) return fail("timestamp", t.message);
    ts = t.ms;
  }
  const location = parseLocation(params);
  if (location && "ok" in location) return location;
  const b = new RecordBuilder();
  for (const [name, value] of params) {
    if (POSITION.has(name) || DROPPED.has(name)) continue;
    const bad = addParameter(b, name, value);
    if (bad) return bad;
  }
  return { ok: true, records: [b.build(id, ts, location)] };
}
