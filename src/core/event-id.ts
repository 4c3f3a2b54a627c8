/**
 * Deterministic event ids (UUIDv5). The same identifying fields give the same id in any process,
 * forever. Changing anything here changes every id: don't. A new format gets a new version prefix.
 *
 * Canonical name (UTF-8), fields joined by "|":
 *   v1|{tenant}|{device_id}|{timestamp}|{lat}|{lon}
 *   timestamp: UTC, millisecond precision, ISO 8601 ("2026-11-22T10:00:00.000Z")
 *   lat, lon:  rounded to 7 decimals, written with exactly 7 decimals ("52.5200066", "-0.1000000"),
 *              or empty when the record has no location.
 * Namespace: EVENT_NAMESPACE below (itself UUIDv5 of "telemetry.event.v1" in the URL namespace).
 * Metrics and attributes are not part of an event's identity.
 *
 * A source whose reading is narrower than device + time + location appends a suffix (never used
 * by JSON, whose names stay exactly as above): `{canonical}|{suffix}`. Line protocol's is
 * `lp|{measurement}|{field keys, sorted, joined by ","}` (see lineIdentity in line-protocol-map.ts).
 */
import { createHash } from "node:crypto";
import { toIso } from "./timestamp.ts";

export const EVENT_NAMESPACE = "105fb2b0-f001-56c5-8442-6bbb58a249d5";

export interface EventIdentity {
  tenant: string;
  deviceId: string;
  ts: number;
  lat: number | null;
  lon: number | null;
  /** Appended as `|{suffix}` when given (line protocol); absent for JSON. */
  suffix?: string;
}

/** Zeros before a fraction of n digits, to make it 7. */
const FRACTION_ZEROS = ["0000000", "000000", "00000", "0000", "000", "00", "0", ""];

/** Exact decimal text of a coordinate already rounded to 7 decimals. */
export function coordinateText(value: number): string {
  const scaled = Math.round(Math.abs(value) * 1e7);
  const sign = value < 0 && scaled !== 0 ? "-" : "";
  const whole = Math.floor(scaled / 1e7);
  const fraction = String(scaled - whole * 1e7);
  return `${sign}${whole}.${FRACTION_ZEROS[fraction.length]}${fraction}`;
}

export function canonicalName(id: EventIdentity): string {
  const lat = id.lat === null ? "" : coordinateText(id.lat);
  const lon = id.lon === null ? "" : coordinateText(id.lon);
  const name = `v1|${id.tenant}|${id.deviceId}|${toIso(id.ts)}|${lat}|${lon}`;
  return id.suffix === undefined ? name : `${name}|${id.suffix}`;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function namespaceBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replaceAll("-", ""), "hex");
}

const NAMESPACE_BYTES = namespaceBytes(EVENT_NAMESPACE);

// Under Bun the event namespace's bytes sit at the start of one reused buffer, the name is encoded
// after them (TextEncoder.encodeInto) and one Bun.SHA1.hash over a cached view of the right length
// writes into a reused output: ~half the cost of two hasher updates and a digest per id (decision
// 0530). Other namespaces, names that do not fit, and other runtimes take node:crypto.
const ROOM = 1_024;
const input = new Uint8Array(ROOM);
input.set(NAMESPACE_BYTES, 0);
const tail = input.subarray(NAMESPACE_BYTES.length);
const views: Array<Uint8Array | undefined> = new Array(ROOM + 1);
const encoder = new TextEncoder();
const output = new Uint8Array(64);
const fast = typeof Bun !== "undefined";
const sha1 = (ns: Buffer, name: string): Uint8Array => {
  if (fast && ns === NAMESPACE_BYTES) {
    const { read, written } = encoder.encodeInto(name, tail);
    if (read === name.length) {
      const length = NAMESPACE_BYTES.length + written;
      Bun.SHA1.hash((views[length] ??= input.subarray(0, length)), output);
      return output;
    }
  }
  return createHash("sha1").update(ns).update(name, "utf8").digest();
};

/**
 * RFC 9562 UUIDv5: SHA-1 of namespace bytes + UTF-8 name, version 5, variant 10. Written here
 * rather than taken from `uuid` because ingest computes one per reading and the library's
 * string-to-bytes step (encodeURIComponent + unescape) and namespace parsing per call were ~12 % of
 * the server's CPU under batched load; test/unit/event-id checks it against the library.
 */
export function uuidv5(name: string, namespace: string | Buffer = NAMESPACE_BYTES): string {
  const b = sha1(typeof namespace === "string" ? namespaceBytes(namespace) : namespace, name);
  const h = HEX;
  return (
    h[b[0]!]! +
    h[b[1]!]! +
    h[b[2]!]! +
    h[b[3]!]! +
    "-" +
    h[b[4]!]! +
    h[b[5]!]! +
    "-" +
    h[(b[6]! & 0x0f) | 0x50]! +
    h[b[7]!]! +
    "-" +
    h[(b[8]! & 0x3f) | 0x80]! +
    h[b[9]!]! +
    "-" +
    h[b[10]!]! +
    h[b[11]!]! +
    h[b[12]!]! +
    h[b[13]!]! +
    h[b[14]!]! +
    h[b[15]!]!
  );
}

export function eventId(id: EventIdentity): string {
  return uuidv5(canonicalName(id));
}

/** Message id for a broker message carrying several events: derived from their ids, in order. */
export function groupMessageId(eventIds: readonly string[]): string {
  if (eventIds.length === 1) return eventIds[0]!;
  return uuidv5(`group|${eventIds.join(",")}`);
}
