/**
 * The broker message format (version 1). One message carries one or more readings of ONE device
 * of ONE tenant, in timestamp order, so per-asset order holds and the per-message broker cost is
 * shared. Each reading keeps its own event id: the database is idempotent per reading, and the
 * message's Nats-Msg-Id (see groupMessageId) makes the broker drop an identical re-publish.
 *
 *   {"v":1,"t":"<tenant>","d":"<device_id>","rx":<received epoch ms>,
 *    "r":[{"id":"<uuid>","ts":<epoch ms>,"lat":<num>?,"lon":<num>?,"m":{...}?,"a":{...}?}, ...]}
 */
import type { AttributeValue, Reading } from "./record.ts";

export const ENVELOPE_VERSION = 1;

interface WireReading {
  id: string;
  ts: number;
  lat?: number;
  lon?: number;
  m?: Record<string, number>;
  a?: Record<string, AttributeValue>;
}

export interface Envelope {
  tenant: string;
  deviceId: string;
  receivedAt: number;
  readings: Reading[];
}

export function encodeEnvelope(readings: readonly Reading[], receivedAt: number): string {
  const first = readings[0];
  if (!first) throw new Error("an envelope needs at least one reading");
  const r: WireReading[] = readings.map((x) => {
    const w: WireReading = { id: x.eventId, ts: x.ts };
    if (x.lat !== null && x.lon !== null) {
      w.lat = x.lat;
      w.lon = x.lon;
    }
    if (x.metrics) w.m = x.metrics;
    if (x.attributes) w.a = x.attributes;
    return w;
  });
  return JSON.stringify({ v: ENVELOPE_VERSION, t: first.tenant, d: first.deviceId, rx: receivedAt, r });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class EnvelopeError extends Error {
  override readonly name = "EnvelopeError";
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Decodes and checks a message body. Throws EnvelopeError for anything this version can't store. */
export function decodeEnvelope(body: string): Envelope {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (e) {
    throw new EnvelopeError(`not JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(raw)) throw new EnvelopeError("not an object");
  if (raw.v !== ENVELOPE_VERSION) throw new EnvelopeError(`unsupported envelope version ${JSON.stringify(raw.v)}`);
  const { t, d, rx, r } = raw;
  if (typeof t !== "string" || typeof d !== "string" || typeof rx !== "number" || !Array.isArray(r) || r.length === 0) {
    throw new EnvelopeError("missing t, d, rx or r");
  }
  const readings: Reading[] = new Array(r.length);
  for (let i = 0; i < r.length; i++) {
    const w: unknown = r[i];
    if (!isPlainObject(w) || typeof w.id !== "string" || !UUID.test(w.id) || !Number.isSafeInteger(w.ts)) {
      throw new EnvelopeError(`reading ${i}: bad id or ts`);
    }
    const hasLoc = typeof w.lat === "number" && typeof w.lon === "number";
    const m = w.m;
    if ((m !== undefined && !isPlainObject(m)) || (w.a !== undefined && !isPlainObject(w.a))) {
      throw new EnvelopeError(`reading ${i}: bad metrics or attributes`);
    }
    if (m) {
      for (const k in m) {
        const v = m[k];
        if (typeof v !== "number" || !Number.isFinite(v)) throw new EnvelopeError(`reading ${i}: non-numeric metric`);
      }
    }
    readings[i] = {
      eventId: w.id,
      tenant: t,
      deviceId: d,
      ts: w.ts as number,
      lat: hasLoc ? (w.lat as number) : null,
      lon: hasLoc ? (w.lon as number) : null,
      metrics: (m as Record<string, number> | undefined) ?? null,
      attributes: (w.a as Record<string, AttributeValue> | undefined) ?? null,
    };
  }
  return { tenant: t, deviceId: d, receivedAt: rx, readings };
}
