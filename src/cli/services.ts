/**
 * How operator commands reach the services: the configured URLs, else the embedded services of
 * the `telemetry serve` that owns the data dir, else (database only) a local PostgreSQL started
 * for the duration of the command.
 */
import { join, resolve } from "node:path";
import type { Config } from "../config/schema.ts";
import { createSql, type Sql } from "../db/client.ts";
import { findPostgresBinDir, startLocalPostgres } from "../embedded/postgres.ts";
import { connectBroker, type Broker } from "../nats/connection.ts";
import { runningServer } from "../server/runtime.ts";

export async function withDatabase<T>(config: Config, fn: (sql: Sql, url: string) => Promise<T>): Promise<T> {
  const dataDir = resolve(config.dataDir);
  let url = config.databaseUrl || runningServer(dataDir)?.databaseUrl;
  const local = url ? undefined : await startLocalPostgres({ dataDir: join(dataDir, "pg"), relocateIfUnreachable: true, timescale: config.timescale, binDir: findPostgresBinDir(config.postgresBinDir) });
  url ??= local!.url;
  const sql = createSql(url, { max: 2, name: "cli" });
  try {
    return await fn(sql, url);
  } finally {
    await sql.end({ timeout: 5 });
    await local?.stop();
  }
}

export async function withBroker<T>(config: Config, fn: (broker: Broker) => Promise<T>): Promise<T> {
  const url = config.natsUrl || runningServer(resolve(config.dataDir))?.natsUrl;
  if (!url) throw new Error(`no NATS_URL and no running \`telemetry serve\` owns ${resolve(config.dataDir)}; start the server or set NATS_URL`);
  const broker = await connectBroker(url, { name: "telemetry cli" });
  try {
    return await fn(broker);
  } finally {
    await broker.close();
  }
}
