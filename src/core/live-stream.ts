/**
 * The live stream's (GET /api/v1/stream) pure side: event ids, filters and event bodies.
 *
 * An event id is a position in both sources at once (decision 0620):
 *   `<telemetry seq>[.<reading index>]-<alerts seq>`
 * `1042.3-17`: the 4th reading of message 1042 of the telemetry stream, and everything of the
 * alert stream up to 17. Without the index (`1042-17`) the whole message 1042 is done. A client
 * resuming from an id gets what follows it in both streams, each exactly once.
 */
import type { Envelope } from "./envelope.ts";
import type { AttributeValue } from "./record.ts";

export interface Cursor {
  /** Telemetry stream: last message delivered (fully, when `index` is null). */
  seq: number;
  index: number | null;
  /** Alert stream: last message delivered. */
  alertSeq: number;
}

const ID = /^(\d{1,16})(?:\.(\d{1,6}))?-(\d{1,16})$/;

export function formatCursor(c: Cursor): string {
  return `${c.seq}${c.index === null ? "" : `.${c.index}`}-${c.alertSeq}`;
}

/** Null when the text is not an id this server hands out. */
export function parseCursor(text: string): Cursor | null {
  const m = ID.exec(text.trim());
  if (!m) return null;
  const seq = Number(m[1]);
  const alertSeq = Number(m[3]);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(alertSeq)) return null;
  return { seq, index: m[2] === undefined ? null : Number(m[2]), alertSeq };
}

/** True when reading `index` of message `seq` comes after the cursor. */
export function isAfter(c: Pick<Cursor, "seq" | "index">, seq: number, index: number): boolean {
  if (seq !== c.seq) return seq > c.seq;
  return c.index !== null && index > c.index;
}

export interface StreamFilter {
  /** Null: every device of the tenant. */
  devices: ReadonlySet<string> | null;
  metrics: ReadonlySet<string> | null;
}

export interface ReadingEvent {
  device_id: string;
  ts: string;
  location: { lat: number; lon: number } | null;
  metrics: Record<string, number>;
  attributes: Record<string, AttributeValue>;
  event_id: string;
}

/** The readings of one message as events, each with its index in the message (what the filter keeps). */
export function readingEvents(env: Envelope, filter: StreamFilter): Array<{ index: number; data: ReadingEvent }> {
  if (filter.devices && !filter.devices.has(env.deviceId)) return [];
  const out: Array<{ index: number; data: ReadingEvent }> = [];
  env.readings.forEach((r, index) => {
    let metrics = r.metrics ?? {};
    if (filter.metrics) {
      const kept: Record<string, number> = {};
      let any = false;
      for (const m of filter.metrics)
        if (m in metrics) {
          kept[m] = metrics[m]!;
          any = true;
        }
      if (!any) return;
      metrics = kept;
    }
    out.push({
      index,
      data: {
        device_id: r.deviceId,
        ts: new Date(r.ts).toISOString(),
        location: r.lat !== null && r.lon !== null ? { lat: r.lat, lon: r.lon } : null,
        metrics,
        attributes: r.attributes ?? {},
        event_id: r.eventId,
      },
    });
  });
  return out;
}

/** Alert events pass the device filter by their device, the metric filter by their metric (none: no pass). */
export function alertMatches(alert: { device_id?: unknown; metric?: unknown }, filter: StreamFilter): boolean {
  if (filter.devices && !filter.devices.has(String(alert.device_id))) return false;
  if (filter.metrics && (typeof alert.metric !== "string" || !filter.metrics.has(alert.metric))) return false;
  return true;
}

/** One SSE event as text: `id`, `event`, one `data` line (JSON has no raw newlines). */
export function sseEvent(id: string, event: string, data: string): string {
  return `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`;
}
