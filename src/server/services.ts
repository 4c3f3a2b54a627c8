/**
 * The services a process needs, embedded when no URL is configured: a supervised nats-server and
 * PostgreSQL in the data dir. Each one started registers its stop with `onStop`.
 */
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { startLocalNats } from "../embedded/nats-server.ts";
import { startLocalPostgres } from "../embedded/postgres.ts";
import { logger } from "../lib/log.ts";

const log = logger("server");

export async function natsUrlFor(config: Config, dataDir: string, onStop: (fn: () => Promise<void>) => void): Promise<string> {
  if (config.natsUrl) return config.natsUrl;
  const nats = await startLocalNats({ storeDir: join(dataDir, "nats"), port: config.natsLocalPort, ...(config.natsSync ? { syncInterval: config.natsSync } : {}) });
  onStop(() => nats.stop());
  log.info({ url: nats.url, store: nats.storeDir }, "embedded nats-server started");
  return nats.url;
}

export async function databaseUrlFor(config: Config, dataDir: string, onStop: (fn: () => Promise<void>) => void): Promise<string> {
  if (config.databaseUrl) return config.databaseUrl;
  const pg = await startLocalPostgres({ dataDir: join(dataDir, "pg"), relocateIfUnreachable: true });
  onStop(() => pg.stop());
  log.info({ dataDir: pg.dataDir }, "embedded PostgreSQL started");
  return pg.url;
}
