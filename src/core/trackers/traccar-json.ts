/**
 * Traccar Client 9's JSON body (the OsmAnd protocol's JSON form, from its background location
 * SDK): `{"location":{"timestamp","coords":{…},"battery":{…},"is_moving","odometer","event",
 * "activity","extras"},"device_id"}`. Pure. Field handling follows Traccar's OsmAndProtocolDecoder;
 * a negative speed, heading, accuracy or battery level means "unknown" and is dropped (altitude may
 * be negative and is kept). Speed arrives in m/s and is stored in km/h.
 */
import { parseRfc3339 } from "../timestamp.ts";
import { type DecodeResult, fail, MPS_TO_KMH, RecordBuilder, round6, TRACKER_METRICS as M } from "./fields.ts";

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** A number field: undefined when absent or null, an error message when of another type. */
function num(obj: Json, key: string): number | undefined | string {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  return typeof v === "number" && Number.isFinite(v) ? v : "must be a number";
}

const known = (n: number | undefined): number | undefined => (n !== undefined && n >= 0 ? n : undefined);

function decodeCoords(coords: unknown, b: RecordBuilder): DecodeResult | { lat: number; lon: number } {
  const p = "location.coords";
  if (!isObject(coords)) return fail(p, "must be an object");
  const fields: Record<string, number | undefined> = {};
  for (const key of ["latitude", "longitude", "speed", "heading", "accuracy", "altitude"]) {
    const v = num(coords, key);
    if (typeof v === "string") return fail(`${p}.${key}`, v);
    fields[key] = v;
  }
  const { latitude: lat, longitude: lon } = fields;
  if (lat === undefined) return fail(`${p}.latitude`, "is required");
  if (lon === undefined) return fail(`${p}.longitude`, "is required");
  const speed = known(fields.speed);
  b.metric(M.speed, speed === undefined ? undefined : round6(speed * MPS_TO_KMH));
  b.metric(M.heading, known(fields.heading));
  b.metric(M.accuracy, known(fields.accuracy));
  b.metric(M.altitude, fields.altitude);
  return { lat, lon };
}

function decodeState(loc: Json, b: RecordBuilder): DecodeResult | null {
  const p = "location";
  if (loc.is_moving !== undefined && typeof loc.is_moving !== "boolean")
    return fail(`${p}.is_moving`, "must be a boolean");
  b.attribute("moving", loc.is_moving as boolean | undefined);
  const odometer = num(loc, "odometer");
  if (typeof odometer === "string") return fail(`${p}.odometer`, odometer);
  b.metric("odometer", known(odometer));
  for (const key of ["event", "alarm"]) {
    if (loc[key] !== undefined && typeof loc[key] !== "string") return fail(`${p}.${key}`, "must be a string");
    b.attribute(key, loc[key] as string | undefined);
  }
  if (loc.mock !== undefined && typeof loc.mock !== "boolean") return fail(`${p}.mock`, "must be a boolean");
  b.attribute("mock", loc.mock as boolean | undefined);
  if (loc.activity !== undefined) {
    if (!isObject(loc.activity) || typeof loc.activity.type !== "string")
      return fail(`${p}.activity`, "must be an object with a string type");
    b.attribute("activity", loc.activity.type);
  }
  return null;
}

function decodeBattery(battery: unknown, b: RecordBuilder): DecodeResult | null {
  if (battery === undefined) return null;
  if (!isObject(battery)) return fail("location.battery", "must be an object");
  const level = num(battery, "level");
  if (typeof level === "string") return fail("location.battery.level", level);
  const l = known(level);
  b.metric(M.battery, l === undefined ? undefined : round6(l * 100));
  const charging = battery.is_charging;
  if (charging !== undefined && typeof charging !== "boolean")
    return fail("location.battery.is_charging", "must be a boolean");
  b.attribute("charging", charging as boolean | undefined);
  return null;
}

/** Decodes a parsed Traccar Client JSON body into one record. */
export function decodeTraccarJson(body: unknown): DecodeResult {
  if (!isObject(body)) return fail("", "the body must be a JSON object");
  const id = body.device_id;
  if (typeof id !== "string" || id === "") return fail("device_id", "the device id is required and must be a string");
  const loc = body.location;
  if (!isObject(loc)) return fail("location", "must be an object (batched uploads are not supported)");
  if (typeof loc.timestamp !== "string") return fail("location.timestamp", "is required: an ISO 8601 string");
  const t = parseRfc3339(loc.timestamp);
  if (!t.ok)
    return fail("location.timestamp", t.message.startsWith("must be") ? "must be ISO 8601 with an offset" : t.message);
  const b = new RecordBuilder();
  let location: { lat: number; lon: number } | null = null;
  if (loc.coords !== undefined) {
    const c = decodeCoords(loc.coords, b);
    if ("ok" in c) return c;
    location = c;
  }
  const bad = decodeState(loc, b) ?? decodeBattery(loc.battery, b);
  if (bad) return bad;
  if (loc.extras !== undefined) {
    if (!isObject(loc.extras)) return fail("location.extras", "must be an object");
    for (const [name, value] of Object.entries(loc.extras)) b.extra(name, value);
  }
  return { ok: true, records: [b.build(id, t.ms, location)] };
}
