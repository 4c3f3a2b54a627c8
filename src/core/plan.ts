/**
 * Turns the valid readings of one request into broker messages: pure and deterministic, so the
 * same request always yields the same messages with the same Nats-Msg-Id (a client's retry is
 * dropped by the broker's duplicate window, and by the database's event-id key after it).
 *
 *  - a reading whose event id already appeared earlier in the request is a duplicate;
 *  - readings are grouped per device (first-appearance order), sorted by timestamp within a device
 *    (stable), and cut into messages of at most `maxRecords` readings and about `maxBytes` bytes.
 */
import { encodeEnvelope } from "./envelope.ts";
import { groupMessageId } from "./event-id.ts";
import type { Reading } from "./record.ts";
import { telemetrySubject } from "./subject.ts";

export interface PlannedMessage {
  subject: string;
  msgId: string;
  body: string;
  /** Index (in the request) of each reading carried, in message order. */
  indexes: number[];
}

export interface Plan {
  messages: PlannedMessage[];
  /** Request indexes that repeat an earlier reading of the same request. */
  duplicates: number[];
}

export interface PlanOptions {
  maxRecords: number;
  maxBytes: number;
  receivedAt: number;
}

export function planMessages(items: ReadonlyArray<{ index: number; reading: Reading }>, opts: PlanOptions): Plan {
  const seen = new Set<string>();
  const duplicates: number[] = [];
  const byDevice = new Map<string, Array<{ index: number; reading: Reading }>>();
  for (const item of items) {
    if (seen.has(item.reading.eventId)) {
      duplicates.push(item.index);
      continue;
    }
    seen.add(item.reading.eventId);
    let group = byDevice.get(item.reading.deviceId);
    if (!group) byDevice.set(item.reading.deviceId, (group = []));
    group.push(item);
  }

  const messages: PlannedMessage[] = [];
  for (const [deviceId, group] of byDevice) {
    group.sort((a, b) => a.reading.ts - b.reading.ts || a.index - b.index);
    const subject = telemetrySubject(group[0]!.reading.tenant, deviceId);
    let chunk: typeof group = [];
    let bytes = 0;
    const emit = () => {
      if (chunk.length === 0) return;
      const readings = chunk.map((c) => c.reading);
      messages.push({
        subject,
        msgId: groupMessageId(readings.map((r) => r.eventId)),
        body: encodeEnvelope(readings, opts.receivedAt),
        indexes: chunk.map((c) => c.index),
      });
      chunk = [];
      bytes = 0;
    };
    for (const item of group) {
      const size = estimateBytes(item.reading);
      if (chunk.length > 0 && (chunk.length >= opts.maxRecords || bytes + size > opts.maxBytes)) emit();
      chunk.push(item);
      bytes += size;
    }
    emit();
  }
  return { messages, duplicates };
}

/** Cheap upper-bound estimate of a reading's encoded size (ids and numbers are fixed-width enough). */
function estimateBytes(r: Reading): number {
  let n = 96;
  if (r.metrics) for (const k in r.metrics) n += k.length + 26;
  if (r.attributes) n += JSON.stringify(r.attributes).length;
  return n;
}
