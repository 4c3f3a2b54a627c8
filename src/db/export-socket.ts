/**
 * The export's own database client (decision 0606): its sockets hand postgres.js only whole
 * protocol messages, so the driver never keeps a partial message and never concatenates one read
 * into a new buffer. Then every buffer a COPY row arrives in is a socket read that nothing else
 * refers to once its rows were copied out, and the COPY reader (export-copy.ts) frees it at once
 * (`ArrayBuffer.prototype.transfer(0)` detaches it and releases its memory) instead of leaving
 * ~100 MB of read buffers per million rows to the next collection.
 *
 * Runs of CopyData messages are merged into one per read (mergeCopyData), so a million rows are a
 * few thousand pushes, not a million.
 *
 * Only plain TCP and Unix sockets are framed; with TLS postgres.js wraps the socket itself and the
 * reads stay the driver's (nothing is freed early, memory is then what a collection leaves).
 */
import net from "node:net";
import { createSql, type Sql } from "./client.ts";

/** Buffers made by a framed socket: the only ones the COPY reader may free. */
const framed = new WeakSet<ArrayBufferLike>();

/** Frees a buffer a framed socket made, once nothing reads it any more; other buffers are left alone. */
export function freeReadBuffer(buffer: ArrayBufferLike): boolean {
  if (!framed.has(buffer)) return false;
  framed.delete(buffer);
  (buffer as ArrayBuffer).transfer(0);
  return true;
}

const own = (b: Buffer) => {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) framed.add(b.buffer);
  return b;
};

const COPY_DATA = 0x64; // 'd'

/**
 * Rewrites each run of CopyData messages in `b[start, end)` into one, in place (the rows' bytes
 * moved together, one header): postgres.js then pushes one chunk per read instead of two buffer
 * views and a stream entry per row. Returns the new end.
 */
export function mergeCopyData(b: Buffer, start: number, end: number): number {
  let read = start;
  let write = start;
  while (read < end) {
    if (b[read] !== COPY_DATA) {
      const size = b.readUInt32BE(read + 1) + 1;
      if (write !== read) b.copyWithin(write, read, read + size);
      write += size;
      read += size;
      continue;
    }
    const head = write;
    write += 5;
    while (read < end && b[read] === COPY_DATA) {
      const size = b.readUInt32BE(read + 1) + 1;
      b.copyWithin(write, read + 5, read + size);
      write += size - 5;
      read += size;
    }
    b[head] = COPY_DATA;
    b.writeUInt32BE(write - head - 1, head + 1);
  }
  return write;
}

/** Makes `socket` emit whole backend messages (type byte, 4-byte length, body) as its 'data'. */
export function frameMessages(socket: net.Socket): net.Socket {
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
  let part: Buffer | null = null; // a message begun in an earlier read: its full size once the header is in
  let have = 0;
  const take = (read: Buffer, at: number): number => {
    while (part && at < read.length) {
      const n = Math.min((have < 5 ? 5 : part.length) - have, read.length - at);
      read.copy(part, have, at, at + n);
      have += n;
      at += n;
      if (have === 5 && part.length === 5) {
        const whole = Buffer.alloc(part.readUInt32BE(1) + 1);
        part.copy(whole, 0, 0, 5);
        part = whole;
      }
      if (have >= 5 && have === part.length) {
        const done = part;
        part = null;
        have = 0;
        emit("data", own(done));
      }
    }
    return at;
  };
  // biome-ignore lint/suspicious/noExplicitAny: the socket's emit, wrapped for 'data' only
  (socket as any).emit = (event: string | symbol, ...args: unknown[]) => {
    if (event !== "data") return emit(event, ...args);
    const read = own(args[0] as Buffer);
    const at = take(read, 0);
    let end = at;
    while (read.length - end >= 5) {
      const size = read.readUInt32BE(end + 1) + 1;
      if (end + size > read.length) break;
      end += size;
    }
    if (end > at) emit("data", read.subarray(at, mergeCopyData(read, at, end)));
    if (end < read.length) {
      const left = read.length - end;
      part = Buffer.alloc(left >= 5 ? read.readUInt32BE(end + 1) + 1 : 5);
      read.copy(part, 0, end);
      have = left;
    }
    return true;
  };
  return socket;
}

interface SocketOptions {
  path?: string | false;
  host: string[];
  port: number[];
  ssl?: unknown;
}

function connectFramed(o: SocketOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = o.path ? net.connect(o.path) : net.connect(o.port[0]!, o.host[0]!);
    s.once("error", reject);
    s.once("connect", () => {
      s.off("error", reject);
      resolve(o.ssl ? s : frameMessages(s));
    });
  });
}

/**
 * A client for exports only: `slots` connections for the COPYs and one more for cancelling one
 * (export-copy.ts). A URL with several hosts, or TLS, gets
 * postgres.js's own sockets (the first host only would be wrong; TLS reads are not framed).
 */
export function createExportSql(url: string, opts: { slots: number; name: string }): Sql {
  const hosts = new URL(url).host.split(",").length;
  return createSql(url, { max: opts.slots + 1, name: opts.name, socket: hosts > 1 ? undefined : connectFramed });
}
