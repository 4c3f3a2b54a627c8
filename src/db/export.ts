/**
 * A tenant's readings in a range, read in chunks for a streaming export, in the primary key's
 * order (device_id, ts, event_id), so the key's index serves the scan on PostgreSQL and on each
 * TimescaleDB chunk.
 *
 * - "cursor" (PostgreSQL, supervised or by URL): one query, read through a portal `rows` at a time
 *   (postgres.js `.cursor(n)`); the next chunk is fetched only when the consumer asks for it, so a
 *   slow reader holds one connection and one snapshot, never the range in memory.
 * - "keyset" (the embedded PGlite database): one short query per chunk, continuing after the last
 *   key. PGlite is one backend lent per exchange (embedded/pglite-wire.ts): an open portal would hold
 *   it for the whole export and stop the writer; keyset pages give it back between chunks.
 *
 * `return()` on the iterator (the client went away) closes the portal and frees the connection.
 */
import type { ExportRow } from "../core/export-format.ts";
import type { Sql } from "./client.ts";

export type ExportMode = "cursor" | "keyset";

export interface ExportQuery {
  tenant: string;
  from: Date;
  to: Date;
  devices: readonly string[] | null;
  metrics: readonly string[] | null;
}

function filters(sql: Sql, q: ExportQuery) {
  return sql`tenant = ${q.tenant} AND ts >= ${q.from} AND ts < ${q.to}
    ${q.devices ? sql`AND device_id = ANY(${q.devices as string[]}::text[])` : sql``}
    ${q.metrics ? sql`AND metrics ?| ${q.metrics as string[]}::text[]` : sql``}`;
}

const COLUMNS = "device_id, ts, event_id::text AS event_id, lat, lon, metrics, attributes";

export function exportChunks(sql: Sql, q: ExportQuery, mode: ExportMode, rows = 1_000): AsyncIterable<ExportRow[]> {
  if (mode === "cursor")
    return sql`SELECT ${sql.unsafe(COLUMNS)} FROM readings WHERE ${filters(sql, q)}
      ORDER BY device_id, ts, event_id`.cursor(rows) as AsyncIterable<ExportRow[]>;
  return keysetChunks(sql, q, rows);
}

async function* keysetChunks(sql: Sql, q: ExportQuery, rows: number): AsyncGenerator<ExportRow[]> {
  let after: ExportRow | null = null;
  for (;;) {
    const key: ReturnType<typeof sql> = after
      ? sql`AND (device_id, ts, event_id) > (${after.device_id}, ${after.ts}, ${after.event_id}::uuid)`
      : sql``;
    const chunk = (await sql`SELECT ${sql.unsafe(COLUMNS)} FROM readings WHERE ${filters(sql, q)} ${key}
      ORDER BY device_id, ts, event_id LIMIT ${rows}`) as unknown as ExportRow[];
    if (chunk.length) yield chunk;
    if (chunk.length < rows) return;
    after = chunk.at(-1)!;
  }
}
