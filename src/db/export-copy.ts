/**
 * PostgreSQL's export (decision 0606): `COPY (SELECT line …) TO STDOUT`, one row per output line,
 * read through postgres.js's copy-out stream: raw CopyData bytes, no row machinery. The lines are
 * copied into 64 KiB chunks; each socket read they came in is freed as soon as its rows are copied
 * (export-socket.ts). Backpressure: with a chunk waiting for the consumer the copy stream is paused,
 * postgres.js pauses the socket and PostgreSQL waits. `return()` before the end cancels the COPY
 * (`pg_cancel_backend` on another connection of the client, which has one spare for that: postgres.js
 * sends no cancel request for a copy stream), drains what is still in flight and only then gives
 * the connection back, so the cancel cannot hit a later query on it.
 *
 * COPY takes no parameters: the filter's values are quoted as literals here (E'' strings, so the
 * server's standard_conforming_strings does not matter). CSV format with a delimiter and a quote
 * byte (0x1f, 0x1e) that never occur in a line (JSON and the CSV fields escape or forbid control
 * characters), so each line comes out exactly as built, with COPY's "\n" after it.
 */
import { Readable } from "node:stream";
import type { ExportFormat } from "../core/export-format.ts";
import type { Sql } from "./client.ts";
import type { ExportQuery } from "./export.ts";
import { freeReadBuffer } from "./export-socket.ts";

/** Output chunk size (a line longer than this gets a chunk of its own). */
export const COPY_CHUNK_BYTES = 64 * 1024;
/** A cancel is sent again this often until the COPY has ended. */
const CANCEL_RETRY_MS = 250;

/** A PostgreSQL string literal for any text (no NUL: PostgreSQL text cannot hold one). */
export function literal(text: string): string {
  if (text.includes("\0")) throw new Error("a literal cannot contain NUL");
  return `E'${text.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

const textArray = (items: readonly string[]) => `ARRAY[${items.map(literal).join(",")}]::text[]`;
const TS = `to_char(r.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The COPY statement: the same lines as export-sql.ts writes for the keyset mode. */
export function copyStatement(q: ExportQuery, format: ExportFormat): string {
  const only = q.metrics ? textArray(q.metrics) : null;
  const where = [
    `r.tenant = ${literal(q.tenant)}`,
    `r.ts >= ${literal(q.from.toISOString())}::timestamptz`,
    `r.ts < ${literal(q.to.toISOString())}::timestamptz`,
    ...(q.devices ? [`r.device_id = ANY(${textArray(q.devices)})`] : []),
    ...(only ? [`r.metrics ?| ${only}`] : []),
  ].join(" AND ");
  const each = `jsonb_each(r.metrics) WITH ORDINALITY AS m(key, value, o)`;
  const order = only ? `array_position(${only}, m.key)` : "m.o";
  let select: string;
  if (format === "csv") {
    // One row per (reading, metric); a reading without metrics is one row with both empty.
    const metrics = only ? `(SELECT * FROM ${each} WHERE m.key = ANY(${only}))` : `(SELECT * FROM ${each})`;
    select = `SELECT ${TS} || ',' || r.device_id || ',' || r.event_id::text || ',' || coalesce(r.lat::text, '') || ','
        || coalesce(r.lon::text, '') || ',' || coalesce(m.key, '') || ',' || coalesce(m.value::text, '')
      FROM readings r LEFT JOIN LATERAL ${metrics} m ON true
      WHERE ${where} ORDER BY r.device_id, r.ts, r.event_id, ${order}`;
  } else {
    const filter = only ? ` WHERE m.key = ANY(${only})` : "";
    select = `SELECT '{"device_id":' || to_json(r.device_id)::text || ',"ts":"' || ${TS} || '"'
        || CASE WHEN r.lat IS NOT NULL AND r.lon IS NOT NULL THEN ',"location":{"lat":' || r.lat::text || ',"lon":' || r.lon::text || '}' ELSE '' END
        || coalesce((SELECT ',"metrics":{' || string_agg(to_json(m.key)::text || ':' || m.value::text, ',' ORDER BY ${order}) || '}' FROM ${each}${filter}), '')
        || coalesce((SELECT ',"attributes":{' || string_agg(to_json(a.key)::text || ':' || a.value::text, ',' ORDER BY a.o) || '}'
             FROM jsonb_each(r.attributes) WITH ORDINALITY AS a(key, value, o)), '')
        || '}'
      FROM readings r WHERE ${where} ORDER BY r.device_id, r.ts, r.event_id`;
  }
  return `COPY (${select}) TO STDOUT (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e')`;
}

/** Lines copied out of the rows as they arrive, in chunks, with the copy stream paused while a chunk waits. */
class Chunker {
  ready: Uint8Array[] = [];
  private out = new Uint8Array(COPY_CHUNK_BYTES);
  private at = 0;
  private source: ArrayBufferLike | null = null;
  constructor(private readonly stream: Readable) {}

  add(row: Buffer): void {
    if (row.buffer !== this.source) {
      // Every row of the previous read was copied, and postgres.js has moved past it.
      if (this.source) freeReadBuffer(this.source);
      this.source = row.buffer;
    }
    if (this.at + row.length > this.out.length) {
      this.flush();
      if (row.length > this.out.length) this.out = new Uint8Array(row.length);
    }
    this.out.set(row, this.at);
    this.at += row.length;
  }

  flush(): void {
    if (this.at === 0) return;
    this.ready.push(this.out.subarray(0, this.at));
    this.out = new Uint8Array(COPY_CHUNK_BYTES);
    this.at = 0;
    this.stream.pause();
  }

  take(): Uint8Array | undefined {
    const chunk = this.ready.shift();
    if (this.ready.length === 0) this.stream.resume();
    return chunk;
  }
}

/**
 * One COPY's stream, watched from the moment postgres.js makes it: its CopyOutResponse can come in
 * the same socket read as an ErrorResponse (a COPY cancelled while it sorted: PostgreSQL sends the
 * response with the first rows), and postgres.js then destroys the stream before an `await` on
 * `readable()` returns: without a listener already on it, that error would end the process.
 */
class CopyOut {
  stream: Readable | null = null;
  chunks: Chunker | null = null;
  failure: Error | null = null;
  done = false; // the COPY ended (all rows, or an error)
  readonly ended: Promise<void>;
  private settle!: () => void;
  private wake: (() => void) | null = null;

  constructor() {
    this.ended = new Promise<void>((resolve) => (this.settle = resolve));
  }

  /** Hooks the query's resolve (postgres.js 3.4.9: `query.resolve(stream)` on CopyOutResponse). */
  watch(query: unknown): void {
    const q = query as { resolve: (x: unknown) => void };
    const resolve = q.resolve;
    q.resolve = (x: unknown) => {
      if (x instanceof Readable && !this.stream) this.attach(x);
      resolve(x);
    };
  }

  private attach(s: Readable): void {
    this.stream = s;
    const chunks = (this.chunks = new Chunker(s));
    s.on("end", () => this.finish(null));
    s.on("error", (err) => this.finish(err));
    s.on("data", (row: Buffer) => {
      chunks.add(row);
      if (chunks.ready.length) this.notify();
    });
  }

  /** The query ended without a stream (refused, or never sent). */
  close(): void {
    this.finish(null);
  }

  private finish(err: Error | null): void {
    if (err) this.failure = err;
    this.done = true;
    this.settle();
    this.notify();
  }

  notify(): void {
    this.wake?.();
    this.wake = null;
  }

  more(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** Reads off what is still coming (after a cancel), without keeping it. */
  discard(): void {
    const s = this.stream!;
    s.removeAllListeners("data");
    s.on("data", () => {});
    s.resume();
  }
}

/**
 * The COPY's lines in chunks; `signal` aborted: the COPY is cancelled at once (even before its
 * first row: a sorted range can take seconds to start) and the generator ends instead of waiting
 * for rows. The reserved connection is given back only once the COPY has ended, so the caller may
 * count it free when the generator has finished (exportStream's slot).
 */
export async function* copyChunks(
  sql: Sql,
  q: ExportQuery,
  format: ExportFormat,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const reserved = await sql.reserve();
  let pid: number;
  try {
    // enable_sort off (this connection only runs exports): the rows come in key order from the
    // primary key's index, at most an incremental sort per reading's metrics, so the first ones
    // leave at once. With stale statistics (a bulk load not yet analyzed) the planner otherwise
    // sorted the whole range first: seconds of silence, which Bun's 10 s idle timeout cut off.
    pid = (await reserved`SELECT pg_backend_pid() AS pid, set_config('enable_sort', 'off', false)`)[0]!.pid as number;
  } catch (err) {
    reserved.release();
    throw err;
  }
  const out = new CopyOut();
  // On the client's spare connection (export-socket.ts): never one a COPY holds. Repeated until
  // the COPY ends: a cancel that reaches the backend before the COPY finds it idle and does nothing.
  // Safe: the connection runs nothing but this COPY until it is released after the COPY ended.
  let cancelling: Promise<void> | null = null;
  const cancel = () =>
    (cancelling ??= (async () => {
      while (!out.done) {
        await sql`SELECT pg_cancel_backend(${pid})`.catch(() => {});
        await Promise.race([out.ended, Bun.sleep(CANCEL_RETRY_MS)]);
      }
    })());
  const onAbort = () => {
    void cancel();
    out.notify();
  };
  let finished = false;
  try {
    if (signal?.aborted) return; // left while this waited for its connection: nothing to cancel
    signal?.addEventListener("abort", onAbort, { once: true });
    const query = reserved.unsafe(copyStatement(q, format));
    out.watch(query);
    await query.readable();
    const chunks = out.chunks!;
    for (;;) {
      if (signal?.aborted) return;
      if (chunks.ready.length) {
        yield chunks.take()!;
        continue;
      }
      if (out.failure) throw out.failure;
      if (out.done) {
        chunks.flush();
        if (!chunks.ready.length) break;
        continue;
      }
      await out.more();
    }
    finished = true;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!out.stream)
      out.close(); // never sent, or refused before its first row: nothing runs
    else if (!finished && !out.done) {
      // Left early (the client went away): stop the COPY, read off what is still coming, then release.
      out.discard();
      void cancel();
    }
    await out.ended;
    await cancelling;
    reserved.release();
  }
}
