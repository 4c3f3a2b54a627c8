/**
 * Composition root: starts what the configuration asks for (embedded services when no URL is
 * given), wires the roles together through shared clients, serves HTTP, and stops it all in order.
 */
import { drizzle } from "drizzle-orm/postgres-js";
import { mkdirSync } from "node:fs";
import { resolve, join } from "node:path";
import type { Config } from "../config/schema.ts";
import { apiRoutes } from "../api/routes.ts";
import { createSql, describeDatabase, type Sql } from "../db/client.ts";
import { migrate, type StorageMode } from "../db/migrate.ts";
import { startLocalNats } from "../embedded/nats-server.ts";
import { startLocalPostgres } from "../embedded/postgres.ts";
import type { LocalNats, LocalPostgres } from "../embedded/types.ts";
import { buildApp, type ReadyCheck } from "../http/app.ts";
import { staticKeys } from "../http/auth.ts";
import { ingestRoutes, type IngestCounters } from "../ingest/routes.ts";
import { logger } from "../lib/log.ts";
import { connectBroker, type Broker } from "../nats/connection.ts";
import { ensureStream } from "../nats/stream.ts";
import { tenantFilter } from "../core/subject.ts";
import { COMMITTED_PREFIX } from "../core/committed.ts";
import { startRetention } from "../writer/retention.ts";
import { startWriter, type Writer } from "../writer/writer.ts";
import { resolveKeys } from "./keys.ts";

const log = logger("server");

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly natsUrl: string;
  readonly databaseUrl: string | null;
  readonly storageMode: StorageMode | null;
  readonly writer: Writer | null;
  readonly broker: Broker;
  readonly counters: IngestCounters;
  /** Set when this start generated the default key (shown once). */
  readonly generatedKey?: { tenant: string; key: string; file: string };
  stop(): Promise<void>;
}

export async function startServer(config: Config): Promise<RunningServer> {
  const dataDir = resolve(config.dataDir);
  const needsDb = config.roles.includes("writer") || config.roles.includes("api");
  const cleanup: Array<() => Promise<void>> = [];
  const runCleanup = async () => {
    for (const fn of cleanup.reverse()) await fn().catch((err) => log.error({ err: (err as Error).message }, "shutdown step failed"));
  };

  try {
    // Others may traverse (the postgres OS user must reach its data when we run as root) but not list.
    mkdirSync(dataDir, { recursive: true, mode: 0o711 });
    let localNats: LocalNats | undefined;
    let natsUrl = config.natsUrl;
    if (!natsUrl) {
      localNats = await startLocalNats({ storeDir: join(dataDir, "nats"), port: config.natsLocalPort });
      cleanup.push(() => localNats!.stop());
      natsUrl = localNats.url;
      log.info({ url: natsUrl, store: localNats.storeDir }, "embedded nats-server started");
    }

    let localPg: LocalPostgres | undefined;
    let databaseUrl: string | null = null;
    let sql: Sql | null = null;
    let storageMode: StorageMode | null = null;
    if (needsDb) {
      databaseUrl = config.databaseUrl;
      if (!databaseUrl) {
        localPg = await startLocalPostgres({ dataDir: join(dataDir, "pg"), relocateIfUnreachable: true });
        cleanup.push(() => localPg!.stop());
        databaseUrl = localPg.url;
        log.info({ dataDir: localPg.dataDir }, "embedded PostgreSQL started");
      }
      sql = createSql(databaseUrl, { max: config.databasePoolMax, name: config.roles.join("+") });
      const db = sql;
      cleanup.push(() => db.end({ timeout: 5 }));
      if (config.autoMigrate) {
        storageMode = (await migrate(sql, { timescale: config.timescale, retentionMs: config.retention, compressAfterMs: config.compressAfter })).mode;
      }
      log.info({ database: describeDatabase(databaseUrl), mode: storageMode ?? "not migrated" }, "database ready");
    }

    const broker: Broker = await connectBroker(natsUrl, { name: `telemetry ${config.roles.join(",")}`, timeoutMs: config.publishTimeout });
    cleanup.push(() => broker.close());
    await ensureStream(broker.jsm, {
      name: config.streamName,
      subjects: [tenantFilter()],
      maxAgeMs: config.streamMaxAge,
      duplicateWindowMs: config.streamDuplicateWindow,
      replicas: config.streamReplicas,
    });
    await ensureStream(broker.jsm, {
      name: committedStream(config.streamName),
      subjects: [`${COMMITTED_PREFIX}.>`],
      maxAgeMs: 24 * 3_600_000,
      duplicateWindowMs: config.streamDuplicateWindow,
      replicas: config.streamReplicas,
    });

    const keys = resolveKeys(config.apiKeys, dataDir);
    const resolver = staticKeys(keys.entries);
    const counters: IngestCounters = { accepted: 0, duplicate: 0, rejected: 0, unavailable: 0 };
    let writer: Writer | null = null;
    const routes = [];
    const streamCheck = cached(() => streamReachable(broker, config.streamName));
    const checks: ReadyCheck[] = [{ name: "nats", check: () => (broker.connected ? streamCheck() : Promise.resolve(false)) }];
    if (sql) {
      const db = sql;
      checks.push({ name: "database", check: cached(() => pingDatabase(db)) });
    }
    if (config.roles.includes("ingest")) {
      routes.push(
        ingestRoutes(broker, resolver, {
          stream: config.streamName,
          maxBodyBytes: config.maxBodyBytes,
          maxRecordsPerRequest: config.maxRecordsPerRequest,
          recordsPerMessage: config.recordsPerMessage,
          maxFutureMs: config.maxFuture,
          publishTimeoutMs: config.publishTimeout,
        }, counters),
      );
    }
    if (config.roles.includes("writer")) {
      writer = await startWriter(broker, sql!, {
        stream: config.streamName,
        committedStream: committedStream(config.streamName),
        durable: "writer",
        batchSize: config.batchSize,
        flushIntervalMs: config.flushInterval,
        maxPending: config.writerMaxPending,
        ackWaitMs: config.ackWait,
      });
      const w = writer;
      // The writer's final flush must happen before the broker connection and pool close.
      cleanup.push(() => w.stop(Math.max(1_000, config.shutdownTimeout - 2_000)));
      if (config.retention !== null && storageMode === "postgresql") {
        const stopRetention = startRetention(sql!, config.retention);
        cleanup.push(async () => stopRetention());
      }
    }
    if (config.roles.includes("api")) routes.push(apiRoutes(drizzle(sql!), resolver));

    let shuttingDown = false;
    const app = buildApp(routes, checks, () => shuttingDown);
    const http = Bun.serve({ hostname: config.host, port: config.port, fetch: app.fetch, maxRequestBodySize: config.maxBodyBytes * 2 + 65_536 });
    cleanup.push(async () => {
      await http.stop(false);
    });
    const url = `http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${http.port}`;
    log.info({ url, roles: config.roles }, "telemetry serving");

    let stopped: Promise<void> | null = null;
    return {
      url,
      port: http.port!,
      natsUrl,
      databaseUrl,
      storageMode,
      writer,
      broker,
      counters,
      generatedKey: keys.generated,
      stop() {
        if (!stopped) {
          shuttingDown = true;
          stopped = runCleanup().then(() => log.info("stopped"));
        }
        return stopped;
      },
    };
  } catch (err) {
    await runCleanup();
    throw err;
  }
}

function withTimeout(p: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: Timer | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([p.catch(() => false), timeout]).finally(() => clearTimeout(timer));
}

function pingDatabase(sql: Sql): Promise<boolean> {
  return withTimeout(sql`SELECT 1`.then(() => true), 2_000);
}

/** Connected, and JetStream answers for the stream (not just the socket being up). */
function streamReachable(broker: Broker, stream: string): Promise<boolean> {
  return withTimeout(broker.jsm.streams.info(stream).then(() => true), 2_000);
}

/** Probes run at most once a second however often /ready is polled (a load balancer may poll hard). */
function cached(probe: () => Promise<boolean>, ttlMs = 1_000): () => Promise<boolean> {
  let last: { at: number; value: Promise<boolean> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at >= ttlMs) last = { at: now, value: probe() };
    return last.value;
  };
}

/** The committed-batch events live in their own stream next to the telemetry stream. */
export function committedStream(telemetryStream: string): string {
  return `${telemetryStream}_COMMITTED`;
}
