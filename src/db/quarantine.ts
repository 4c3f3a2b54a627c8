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

/** Connection-level trouble (worth retrying forever) as opposed to an error in the work itself. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return /^(08|57P|53)/.test(code) || /^(CONNECTION_|CONNECT_TIMEOUT|E[A-Z]+$)/.test(code);
}
