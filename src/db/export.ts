/**
 * A tenant's readings in a range, read in chunks for a streaming export, in the primary key's
 * order (device_id, ts, event_id), so the key's index serves the scan on PostgreSQL and on each
 * TimescaleDB chunk. Each chunk is the bytes of its lines, formatted by PostgreSQL (export-sql.ts).
 *
 * - "copy" (PostgreSQL, supervised or by URL): one `COPY (SELECT line …) TO STDOUT` (export-copy.ts),
 *   paused while a chunk waits for the consumer, so a slow reader holds one connection and one
 *   snapshot, never the range in memory.
 * - "keyset" (the embedded PGlite database): one short query per chunk, continuing after the last
 *   key. PGlite is one backend lent per exchange (embedded/pglite-wire.ts): an open portal would hold
 *   it for the whole export and stop the writer; keyset pages give it back between chunks.
 *
 * `return()` on the iterator (the client went away) ends the query and frees the connection. A
 * chunk is the consumer's until it asks for the next one (api/export.ts then frees its memory).
 */
import type { ExportFormat } from "../core/export-format.ts";
import type { Sql } from "./client.ts";
import { copyChunks } from "./export-copy.ts";
import { joinLines, lineExpression } from "./export-sql.ts";

export type ExportMode = "copy" | "keyset";

export interface ExportQuery {
  tenant: string;
  from: Date;
  to: Date;
  devices: readonly string[] | null;
  metrics: readonly string[] | null;
}

/** Rows per keyset page (decision 0605: 1,000 kept ~10 MiB more garbage in flight; 100 makes more round trips). */
export const EXPORT_CHUNK_ROWS = 250;

function filters(sql: Sql, q: ExportQuery) {
  return sql`tenant = ${q.tenant} AND ts >= ${q.from} AND ts < ${q.to}
    ${q.devices ? sql`AND device_id = ANY(${q.devices as string[]}::text[])` : sql``}
    ${q.metrics ? sql`AND metrics ?| ${q.metrics as string[]}::text[]` : sql``}`;
}

type RawRow = (Uint8Array | null)[];

export async function* exportChunks(
  sql: Sql,
  q: ExportQuery,
  format: ExportFormat,
  mode: ExportMode,
  rows = EXPORT_CHUNK_ROWS,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  if (mode === "copy") {
    yield* copyChunks(sql, q, format, signal);
    return;
  }
  // Built afresh for each query (cheap), so no fragment object is shared between queries.
  const line = () => lineExpression(sql, format, q.metrics);
  yield* keysetChunks(sql, q, line, rows);
}

const text = (b: Uint8Array | null) => Buffer.from(b!.buffer, b!.byteOffset, b!.byteLength).toString("utf8");

async function* keysetChunks(
  sql: Sql,
  q: ExportQuery,
  line: () => ReturnType<Sql>,
  rows: number,
): AsyncGenerator<Uint8Array> {
  // The last key as PostgreSQL's text: a timestamptz parameter would go through a JS Date (ms) and
  // lose the microseconds, repeating the rows of the same millisecond.
  let after: [string, string, string] | null = null;
  for (;;) {
    const key: ReturnType<typeof sql> = after
      ? sql`AND (device_id, ts, event_id) > (${after[0]}, ${after[1]}::text::timestamptz, ${after[2]}::uuid)`
      : sql``;
    const chunk = (await sql`SELECT ${line()} AS line, device_id, ts::text, event_id::text FROM readings
      WHERE ${filters(sql, q)} ${key} ORDER BY device_id, ts, event_id LIMIT ${rows}`.raw()) as unknown as RawRow[];
    if (chunk.length) yield joinLines(chunk);
    if (chunk.length < rows) return;
    const last = chunk.at(-1)!;
    after = [text(last[1]!), text(last[2]!), text(last[3]!)];
  }
}
