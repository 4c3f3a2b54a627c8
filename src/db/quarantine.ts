/** Quarantine: messages a component can never process, kept with the reason instead of redelivered forever. */
import type { Sql } from "./client.ts";

export interface QuarantineRow {
  source: "writer" | "evaluator" | "mqtt";
  subject: string;
  streamSeq: number;
  reason: string;
  payload: string;
}

/** PostgreSQL text cannot hold NUL characters; keep them visible but storable. */
export function storablePayload(text: string): string {
  return text.replaceAll("\u0000", "\\u0000");
}

/** Idempotent per (source, stream sequence): a redelivered poison message is recorded once. */
export function insertQuarantine(sql: Sql, q: QuarantineRow) {
  return sql`
    INSERT INTO quarantine (source, subject, stream_seq, reason, payload)
    VALUES (${q.source}, ${q.subject}, ${q.streamSeq}, ${q.reason}, ${storablePayload(q.payload)})
    ON CONFLICT (source, stream_seq) DO NOTHING`;
}
