/**
 * OwnTracks HTTP mode: the app POSTs one JSON message per request, identified by `_type`. Only
 * `_type: "location"` is a reading; every other type (transition, waypoint(s), lwt, card, status,
 * steps, beacon, cmd, …) is "nothing to store", answered like a stored one (the app expects a JSON
 * array, empty is fine). `encrypted` is an error: it cannot be read without the app's secret.
 * Pure. Field names and units: docs/protocols/owntracks.md.
 */
import { type DecodeResult, fail, RecordBuilder, TRACKER_METRICS as M } from "./fields.ts";

/** Who sent it: the `X-Limit-U` (user) and `X-Limit-D` (device) headers the app adds, if any. */
export interface OwnTracksIdentity {
  user?: string | null;
  device?: string | null;
}

/** Numeric fields with a name of their own; a negative value of those marked `known` means unknown. */
const NUMERIC: Record<string, { metric: string; unknownBelowZero?: boolean }> = {
  acc: { metric: M.accuracy, unknownBelowZero: true },
  alt: { metric: M.altitude },
  batt: { metric: M.battery, unknownBelowZero: true },
  vel: { metric: M.speed, unknownBelowZero: true },
  cog: { metric: M.heading, unknownBelowZero: true },
  vac: { metric: "vertical_accuracy", unknownBelowZero: true },
  bs: { metric: "battery_status" },
  p: { metric: "pressure" },
};

const STRINGS: Record<string, string> = {
  tid: "tid",
  t: "trigger",
  conn: "conn",
  SSID: "ssid",
  BSSID: "bssid",
  topic: "topic",
  poi: "poi",
  tag: "tag",
};

/** Not readings: the message's own metadata, and a picture far over the attribute limit. */
const DROPPED = new Set(["_type", "_id", "lat", "lon", "tst", "created_at", "image", "imagename"]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The device id: `user:device` from the headers, one of them alone, else the tracker id. */
export function ownTracksDeviceId(identity: OwnTracksIdentity, tid: unknown): string | null {
  const user = identity.user || null;
  const device = identity.device || null;
  if (user && device) return `${user}:${device}`;
  if (user || device) return (user ?? device)!;
  return typeof tid === "string" && tid !== "" ? tid : null;
}

function addField(b: RecordBuilder, name: string, value: unknown): DecodeResult | null {
  const numeric = Object.hasOwn(NUMERIC, name) ? NUMERIC[name] : undefined; // not Object.prototype's
  const string = Object.hasOwn(STRINGS, name) ? STRINGS[name] : undefined;
  if (numeric) {
    if (value === null || value === undefined) return null;
    if (typeof value !== "number" || !Number.isFinite(value)) return fail(name, "must be a number");
    b.metric(numeric.metric, numeric.unknownBelowZero && value < 0 ? undefined : value);
  } else if (string) {
    if (typeof value !== "string") return fail(name, "must be a string");
    b.attribute(string, value);
  } else if (name === "inregions" || name === "inrids") {
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string"))
      return fail(name, "must be an array of strings");
    if (value.length > 0) b.attribute(name, value.join(","));
  } else {
    b.extra(name, value);
  }
  return null;
}

/** Decodes a parsed OwnTracks HTTP body: one record for a location, none for other types. */
export function decodeOwnTracks(body: unknown, identity: OwnTracksIdentity = {}): DecodeResult {
  if (!isObject(body)) return fail("", "the body must be a JSON object");
  const type = body._type;
  if (typeof type !== "string") return fail("_type", "is required and must be a string");
  if (type === "encrypted")
    return fail("_type", "encrypted payloads are not supported: turn off encryption in the app");
  if (type !== "location") return { ok: true, records: [] };
  const id = ownTracksDeviceId(identity, body.tid);
  if (id === null)
    return fail("tid", "no device identity: set the app's user and device id (X-Limit-U/X-Limit-D) or a tracker id");
  const { lat, lon, tst } = body;
  if (typeof lat !== "number" || !Number.isFinite(lat)) return fail("lat", "is required and must be a number");
  if (typeof lon !== "number" || !Number.isFinite(lon)) return fail("lon", "is required and must be a number");
  if (typeof tst !== "number" || !Number.isInteger(tst) || !Number.isSafeInteger(tst * 1000) || tst < 0)
    return fail("tst", "is required: whole epoch seconds");
  const b = new RecordBuilder();
  for (const [name, value] of Object.entries(body)) {
    if (DROPPED.has(name)) continue;
    const bad = addField(b, name, value);
    if (bad) return bad;
  }
  return { ok: true, records: [b.build(id, tst * 1000, { lat, lon })] };
}

/** At most this many characters of body text are parsed (the endpoint's body limit applies first). */
export const MAX_OWNTRACKS_BODY = 65_536;

/**
 * Decodes the body text as sent. An empty body (the app POSTs one when a friend is deleted) is
 * nothing to store, as the booklet advises.
 */
export function decodeOwnTracksText(text: string, identity: OwnTracksIdentity = {}): DecodeResult {
  if (text.trim() === "") return { ok: true, records: [] };
  if (text.length > MAX_OWNTRACKS_BODY) return fail("", `the body is over ${MAX_OWNTRACKS_BODY} characters`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return fail("", "the body is not valid JSON");
  }
  return decodeOwnTracks(body, identity);
}
