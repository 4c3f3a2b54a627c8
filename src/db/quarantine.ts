/** Quarantine: messages a component can never process, kept with the reason instead of redelivered forever. */
import type { Sql } from "./client.ts";

export interface QuarantineRow {
  /** writer, evaluator, mqtt: a stream message; osmand, owntracks: a tracker request refused by the device policy (no stream sequence). */
  source: "writer" | "evaluator" | "mqtt" | "osmand" | "owntracks";
  subject: string;
  streamSeq: number | null;
  reason: string;
  payload: string;
}

/** PostgreSQL text cannot hold NUL characters; keep them visible but storable. */
export function storablePayload(text: string): string {
  return text.replaceAll("\u0000", "\\u0000");
}

/** Idempotent per (source, stream sequence): a redelivered poison message is recorded once (rows without a sequence are not deduplicated). */
export function insertQuarantine(sql: Sql, q: QuarantineRow) {
  return sql`
    INSERT INTO quarantine (source, subject, stream_seq, reason, payload)
    VALUES (${q.source}, ${q.subject}, ${q.streamSeq}, ${q.reason}, ${storablePayload(q.payload)})
    ON CONFLICT (source, stream_seq) DO NOTHING`;
}
