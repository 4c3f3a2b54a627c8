/**
 * How operator commands reach the services: the configured URLs, else the embedded services of
 * the `telemetry serve` that owns the data dir, else (database only) a local PostgreSQL started
 * for the duration of the command.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Config } from "../config/schema.ts";
import { createSql, type Sql } from "../db/client.ts";
import { findPostgresBinDir, startLocalPostgres } from "../embedded/postgres.ts";
import { connectBroker, type Broker } from "../nats/connection.ts";
import { claimDataDir, runningServer } from "../server/runtime.ts";
import { databaseKind, embeddedDataDir } from "../server/services.ts";

export async function withDatabase<T>(config: Config, fn: (sql: Sql, url: string) => Promise<T>): Promise<T> {
  const dataDir = resolve(config.dataDir);
  let url = config.databaseUrl || runningServer(dataDir)?.databaseUrl;
  const local = url ? undefined : await startLocalDatabase(config, dataDir);
  url ??= local!.url;
  const sql = createSql(url, { max: 2, name: "cli" });
  try {
    return await fn(sql, url);
  } finally {
    await sql.end({ timeout: 5 });
    await local?.stop();
  }
}

/** The data dir's own database for the duration of a command (no server owns it). */
async function startLocalDatabase(config: Config, dataDir: string): Promise<{ url: string; stop(): Promise<void> }> {
  if (databaseKind(config, dataDir) !== "embedded")
    return startLocalPostgres({
      dataDir: join(dataDir, "pg"),
      relocateIfUnreachable: true,
      timescale: config.timescale,
      binDir: findPostgresBinDir(config.postgresBinDir),
    });
  // One PGlite per data dir: claimed like `serve` does, so no server starts on the same files meanwhile.
  mkdirSync(dataDir, { recursive: true, mode: 0o711 });
  const claim = claimDataDir(dataDir);
  try {
    const { startEmbeddedDatabase } = await import("../embedded/pglite.ts");
    const db = await startEmbeddedDatabase({ dataDir: embeddedDataDir(dataDir) });
    return { url: db.url, stop: () => db.stop().finally(() => claim.release()) };
  } catch (err) {
    claim.release();
    throw err;
  }
}

export async function withBroker<T>(config: Config, fn: (broker: Broker) => Promise<T>): Promise<T> {
  const url = config.natsUrl || runningServer(resolve(config.dataDir))?.natsUrl;
  if (!url)
    throw new Error(
      `no NATS_URL and no running \`telemetry serve\` owns ${resolve(config.dataDir)}; start the server or set NATS_URL`,
    );
  const broker = await connectBroker(url, { name: "telemetry cli" });
  try {
    return await fn(broker);
  } finally {
    await broker.close();
  }
}
