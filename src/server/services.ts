/**
 * The services a process needs, embedded when no URL is configured: a supervised nats-server (the
 * one this executable carries, or the machine's: TELEMETRY_NATS_SERVER_BIN) and PostgreSQL in the data dir. Each one started registers its stop with `onStop`.
 */
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { natsServerBinary } from "../embedded/nats-binary.ts";
import { startLocalNats } from "../embedded/nats-server.ts";
import { findPostgresBinDir, startLocalPostgres } from "../embedded/postgres.ts";
import type { LocalNats } from "../embedded/types.ts";
import { logger } from "../lib/log.ts";

const log = logger("server");

/**
 * The NATS URL to use; for a supervised nats-server also its current server ID (the broker
 * connection refuses any other server there) and, with MQTT on, its MQTT users handle.
 */
export async function natsUrlFor(config: Config, dataDir: string, onStop: (fn: () => Promise<void>) => void): Promise<{ url: string; serverId?: () => string | undefined; mqtt?: LocalNats["mqtt"] }> {
  if (config.natsUrl) return { url: config.natsUrl };
  const nats = await startLocalNats({
    binary: natsServerBinary(config.natsServerBin, dataDir),
    storeDir: join(dataDir, "nats"),
    port: config.natsLocalPort,
    ...(config.natsSync ? { syncInterval: config.natsSync } : {}),
    ...(config.mqttPort ? { mqtt: { host: config.mqttHost, port: config.mqttPort } } : {}),
  });
  onStop(() => nats.stop());
  log.info({ url: nats.url, store: nats.storeDir, mqtt: nats.mqtt?.url }, "embedded nats-server started");
  return { url: nats.url, serverId: () => nats.serverId, mqtt: nats.mqtt };
}

export async function databaseUrlFor(config: Config, dataDir: string, onStop: (fn: () => Promise<void>) => void): Promise<string> {
  if (config.databaseUrl) return config.databaseUrl;
  const pg = await startLocalPostgres({ dataDir: join(dataDir, "pg"), relocateIfUnreachable: true, timescale: config.timescale, binDir: findPostgresBinDir(config.postgresBinDir) });
  onStop(() => pg.stop());
  log.info({ dataDir: pg.dataDir }, "embedded PostgreSQL started");
  return pg.url;
}
