/**
 * The services a process needs, embedded when no URL is configured: a supervised nats-server (the
 * one this executable carries, or the machine's: TELEMETRY_NATS_SERVER_BIN) and PostgreSQL in the data dir. Each one started registers its stop with `onStop`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import { natsServerBinary } from "../embedded/nats-binary.ts";
import { startLocalNats } from "../embedded/nats-server.ts";
import { chooseDatabase, type DatabaseKind } from "../core/database-mode.ts";
import { findPostgresBinDir, locatePostgresBinDir, startLocalPostgres } from "../embedded/postgres.ts";
import type { LocalNats } from "../embedded/types.ts";
import { logger } from "../lib/log.ts";

const log = logger("server");

/**
 * The NATS URL to use; for a supervised nats-server also its current server ID (the broker
 * connection refuses any other server there) and, with MQTT on, its MQTT users handle.
 */
export async function natsUrlFor(
  config: Config,
  dataDir: string,
  onStop: (fn: () => Promise<void>) => void,
): Promise<{ url: string; serverId?: () => string | undefined; mqtt?: LocalNats["mqtt"] }> {
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

export interface DatabaseTarget {
  url: string;
  kind: DatabaseKind;
}

/** Which database this process uses (src/core/database-mode.ts); throws the reason when none fits. */
export function databaseKind(config: Config, dataDir: string): DatabaseKind {
  const choice = chooseDatabase({
    choice: config.database,
    hasUrl: config.databaseUrl !== "",
    embeddedExists: existsSync(join(embeddedDataDir(dataDir), "PG_VERSION")),
    postgresExists: existsSync(join(dataDir, "pg", "PG_VERSION")),
    postgresFound: () => locatePostgresBinDir(config.postgresBinDir) !== undefined,
  });
  if ("error" in choice) throw new Error(choice.error);
  return choice.kind;
}

export const embeddedDataDir = (dataDir: string) => join(dataDir, "pglite");

export const EMBEDDED_NOTICE =
  "embedded database (PGlite, in this process): for trying the server out and small installations (one query at a time; see the README's 'Embedded database' for its limits). " +
  "To move to PostgreSQL: stop the server, run `telemetry migrate-to --database-url postgres://...`, then start it with DATABASE_URL";

export async function databaseUrlFor(
  config: Config,
  dataDir: string,
  onStop: (fn: () => Promise<void>) => void,
): Promise<DatabaseTarget> {
  const kind = databaseKind(config, dataDir);
  if (kind === "url") return { url: config.databaseUrl, kind };
  if (kind === "embedded") {
    if (config.timescale === "on")
      throw new Error(
        "TELEMETRY_TIMESCALE=on: the embedded database has no TimescaleDB; use PostgreSQL with TimescaleDB (DATABASE_URL) or TELEMETRY_TIMESCALE=auto",
      );
    const { startEmbeddedDatabase } = await import("../embedded/pglite.ts");
    const db = await startEmbeddedDatabase({ dataDir: embeddedDataDir(dataDir) });
    onStop(() => db.stop());
    log.warn({ dataDir: db.dataDir }, EMBEDDED_NOTICE);
    return { url: db.url, kind };
  }
  const pg = await startLocalPostgres({
    dataDir: join(dataDir, "pg"),
    relocateIfUnreachable: true,
    timescale: config.timescale,
    binDir: findPostgresBinDir(config.postgresBinDir),
  });
  onStop(() => pg.stop());
  log.info({ dataDir: pg.dataDir }, "embedded PostgreSQL started");
  return { url: pg.url, kind };
}
