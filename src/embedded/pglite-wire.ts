/**
 * A PostgreSQL wire-protocol front for one PGlite instance, on a unix socket, for many clients.
 *
 * PGlite is one backend session. pglite-socket gives it to one client connection for that
 * connection's whole life, so the server's several postgres.js pools (writer, evaluator, api)
 * would wait on each other's idle connections. Here every client may stay connected; the
 * backend is lent per exchange instead: a client takes it for a run of messages ending in Sync,
 * Query, Flush or a password and gives it back as soon as PGlite answers ReadyForQuery "idle". Inside a
 * transaction (status T/E), or after a Flush (the extended protocol continues), the client keeps
 * it until the backend is idle again. One transaction at a time, FIFO.
 *
 * Session state is shared by all clients: named prepared statements are kept apart by their
 * names (postgres.js names them per connection) and closed when their client leaves; a client
 * that leaves mid-transaction has it rolled back. A client that holds the backend but sends
 * nothing for `holdTimeoutMs` (e.g. a transaction waiting on another connection: a deadlock here)
 * is disconnected and its transaction rolled back.
 */
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { logger } from "../lib/log.ts";

const log = logger("pglite");

export interface ProtocolBackend {
  execProtocolRaw(message: Uint8Array, opts?: { syncToFs?: boolean }): Promise<Uint8Array>;
}

export interface WireServerOptions {
  /** Directory (created 0700) holding the socket `.s.PGSQL.<port>`. */
  socketDir: string;
  port?: number;
  maxClients?: number;
  holdTimeoutMs?: number;
  /** Largest message a client may send (default 64 MiB). */
  maxMessageBytes?: number;
}

export interface WireServer {
  readonly socketDir: string;
  readonly port: number;
  readonly clients: number;
  /** Waits for the backend (between exchanges) and runs fn with it to itself. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const ENDS_EXCHANGE = new Set([0x53 /* S Sync */, 0x51 /* Q Query */, 0x48 /* H Flush */, 0x70 /* p password */]);
const TERMINATE = 0x58; // X

/** FIFO mutex: who holds the backend. */
class Lender {
  private holder: object | null = null;
  private waiting: Array<{ who: object; go: () => void }> = [];

  async take(who: object): Promise<void> {
    if (this.holder === who) return;
    if (this.holder === null) {
      this.holder = who;
      return;
    }
    await new Promise<void>((go) => this.waiting.push({ who, go }));
  }

  give(who: object): void {
    if (this.holder !== who) return;
    const next = this.waiting.shift();
    this.holder = next?.who ?? null;
    next?.go();
  }

  holds(who: object): boolean {
    return this.holder === who;
  }

  forget(who: object): void {
    this.waiting = this.waiting.filter((w) => w.who !== who);
  }
}

/** Status byte of the last ReadyForQuery in a backend response, or null when it ends without one. */
export function lastReadyStatus(out: Uint8Array): string | null {
  let at = 0;
  let status: string | null = null;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  while (at + 5 <= out.length) {
    const type = out[at]!;
    const len = view.getInt32(at + 1);
    status = type === 0x5a && at + 5 < out.length ? String.fromCharCode(out[at + 5]!) : null;
    at += 1 + len;
  }
  return status;
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");
const SYNC = message("S", Buffer.alloc(0));
const ROLLBACK = message("Q", cstr("ROLLBACK"));

export async function startWireServer(backend: ProtocolBackend, opts: WireServerOptions): Promise<WireServer> {
  const port = opts.port ?? 5432;
  const maxClients = opts.maxClients ?? 64;
  const holdTimeoutMs = opts.holdTimeoutMs ?? 60_000;
  const maxMessage = opts.maxMessageBytes ?? 64 * 1024 * 1024;
  mkdirSync(opts.socketDir, { recursive: true, mode: 0o700 });
  chmodSync(opts.socketDir, 0o700);
  const path = join(opts.socketDir, `.s.PGSQL.${port}`);
  rmSync(path, { force: true });
  const lender = new Lender();
  const sockets = new Set<Socket>();
  const exec = (bytes: Uint8Array) => backend.execProtocolRaw(bytes);

  const server: Server = createServer((socket) => {
    if (sockets.size >= maxClients) {
      log.warn({ maxClients }, "embedded database: too many connections, refusing one");
      const refusal = message(
        "E",
        Buffer.concat([
          cstr("SFATAL"),
          cstr("C53300"),
          cstr(`Mtoo many connections to the embedded database (most ${maxClients})`),
          Buffer.from([0]),
        ]),
      );
      socket.on("error", () => {});
      // Answered once the client has sent its startup message (before that it could not read it).
      const drop = setTimeout(() => socket.destroy(), 5_000);
      socket.once("data", () => socket.end(refusal, () => socket.destroy()));
      socket.once("close", () => clearTimeout(drop));
      return;
    }
    sockets.add(socket);
    serveClient(socket, { lender, exec, holdTimeoutMs, maxMessage, onEnd: () => sockets.delete(socket) });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  const self = {};
  return {
    socketDir: opts.socketDir,
    port,
    get clients() {
      return sockets.size;
    },
    async exclusive(fn) {
      await lender.take(self);
      try {
        return await fn();
      } finally {
        lender.give(self);
      }
    },
    async stop() {
      server.close();
      for (const s of sockets) s.destroy();
      // Let the clients' close handlers roll back and give the backend back.
      await lender.take(self);
      lender.give(self);
      rmSync(path, { force: true });
    },
  };
}

interface ClientDeps {
  lender: Lender;
  exec(bytes: Uint8Array): Promise<Uint8Array>;
  holdTimeoutMs: number;
  maxMessage: number;
  onEnd(): void;
}

function serveClient(socket: Socket, deps: ClientDeps): void {
  const me = {};
  const statements = new Set<string>();
  let pending: Buffer = Buffer.alloc(0);
  let started = false;
  let closed = false;
  let chain = Promise.resolve();
  let holdTimer: ReturnType<typeof setTimeout> | undefined;

  const fail = (why: string) => {
    log.warn({ why }, "embedded database: dropping a client connection");
    socket.destroy();
  };
  const exchange = async (bytes: Buffer) => {
    clearTimeout(holdTimer);
    await deps.lender.take(me);
    if (closed) return;
    const out = await deps.exec(bytes);
    if (!closed && out.length > 0) socket.write(out);
    if (lastReadyStatus(out) === "I") deps.lender.give(me);
    else
      holdTimer = setTimeout(
        () =>
          fail(
            `held the database ${deps.holdTimeoutMs} ms without a word (a transaction waiting on another connection?)`,
          ),
        deps.holdTimeoutMs,
      );
  };
  const cleanup = async () => {
    clearTimeout(holdTimer);
    const held = deps.lender.holds(me);
    if (!held && statements.size === 0) return deps.lender.forget(me);
    deps.lender.forget(me);
    await deps.lender.take(me);
    try {
      if (held) await deps.exec(Buffer.concat([SYNC, ROLLBACK]));
      if (statements.size > 0) {
        const closes = [...statements].map((name) => message("C", Buffer.concat([Buffer.from("S"), cstr(name)])));
        await deps.exec(Buffer.concat([...closes, SYNC]));
      }
    } finally {
      deps.lender.give(me);
    }
  };

  /** Cuts the complete messages up to the last exchange end off `pending`. */
  const takeExchange = (): Buffer | "terminate" | null => {
    let at = 0;
    let cut = 0;
    while (at + 5 <= pending.length) {
      const type = pending[at]!;
      const len = pending.readInt32BE(at + 1);
      if (len < 4 || len > deps.maxMessage) throw new Error(`message of ${len} bytes`);
      if (at + 1 + len > pending.length) break;
      if (type === TERMINATE) return "terminate";
      if (type === 0x50 /* P Parse */) {
        const end = pending.indexOf(0, at + 5);
        const name = pending.toString("utf8", at + 5, end);
        if (name) statements.add(name);
      }
      at += 1 + len;
      if (ENDS_EXCHANGE.has(type)) cut = at;
    }
    if (cut === 0) {
      if (at > deps.maxMessage) throw new Error(`${at} bytes of messages without a Sync`);
      return null;
    }
    const bytes = pending.subarray(0, cut);
    pending = pending.subarray(cut);
    return bytes;
  };

  /** The first messages have no type byte: SSL/GSS requests (declined), then the startup message. */
  const takeStartup = (): Buffer | null => {
    while (pending.length >= 8) {
      const len = pending.readInt32BE(0);
      if (len < 8 || len > 10_000) throw new Error(`startup message of ${len} bytes`);
      if (pending.length < len) return null;
      const code = pending.readInt32BE(4);
      const bytes = pending.subarray(0, len);
      pending = pending.subarray(len);
      if (code === SSL_REQUEST || code === GSS_REQUEST) socket.write("N");
      else if (code === CANCEL_REQUEST) throw new Error("cancel requests are not supported");
      else return bytes;
    }
    return null;
  };

  const onData = () => {
    for (;;) {
      const next = started ? takeExchange() : takeStartup();
      if (next === null) return;
      if (next === "terminate") return socket.end();
      started = true;
      chain = chain.then(() => exchange(next)).catch((err) => fail(`backend: ${(err as Error).message}`));
    }
  };

  socket.on("data", (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    try {
      onData();
    } catch (err) {
      fail((err as Error).message);
    }
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    closed = true;
    deps.onEnd();
    chain = chain
      .then(cleanup)
      .catch((err) => log.error({ err: (err as Error).message }, "embedded database: cleanup after a client failed"));
  });
}
