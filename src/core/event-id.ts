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
 */
import { v5 as uuidv5 } from "uuid";

export const EVENT_NAMESPACE = "105fb2b0-f001-56c5-8442-6bbb58a249d5";

export interface EventIdentity {
  tenant: string;
  deviceId: string;
  ts: number;
  lat: number | null;
  lon: number | null;
}

/** Exact decimal text of a coordinate already rounded to 7 decimals. */
export function coordinateText(value: number): string {
  const scaled = Math.round(Math.abs(value) * 1e7);
  const sign = value < 0 && scaled !== 0 ? "-" : "";
  const digits = String(scaled).padStart(8, "0");
  return `${sign}${digits.slice(0, -7)}.${digits.slice(-7)}`;
}

export function canonicalName(id: EventIdentity): string {
  const lat = id.lat === null ? "" : coordinateText(id.lat);
  const lon = id.lon === null ? "" : coordinateText(id.lon);
  return `v1|${id.tenant}|${id.deviceId}|${new Date(id.ts).toISOString()}|${lat}|${lon}`;
}

export function eventId(id: EventIdentity): string {
  return uuidv5(canonicalName(id), EVENT_NAMESPACE);
}

/** Message id for a broker message carrying several events: derived from their ids, in order. */
export function groupMessageId(eventIds: readonly string[]): string {
  if (eventIds.length === 1) return eventIds[0]!;
  return uuidv5(`group|${eventIds.join(",")}`, EVENT_NAMESPACE);
}
