/**
 * Composition root: starts what the configuration asks for (embedded services when no URL is
 * given), wires the roles together through shared clients, serves HTTP, and stops it all in
 * reverse order (HTTP first, so no request is accepted that could not be finished).
 */
import { drizzle } from "drizzle-orm/postgres-js";
import type { Hono } from "hono";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Config } from "../config/schema.ts";
import { createSql, describeDatabase, type Sql } from "../db/client.ts";
import { migrate, migrateOptions, type StorageMode } from "../db/migrate.ts";
import { rollupRetentionMs } from "../core/retention.ts";
import { startEvaluator, type Evaluator } from "../evaluator/evaluator.ts";
import { buildApp, type ReadyCheck } from "../http/app.ts";
import { bearerKey, requireAdmin, requireTenant } from "../http/auth.ts";
import { mountGroup } from "../http/route.ts";
import { ingestRoutes } from "../ingest/sources/http-json.ts";
import { OSMAND_SECRET_PATHS, osmandPortRouter, osmandRouter } from "../ingest/sources/osmand.ts";
import { OWNTRACKS_SECRET_PATHS, owntracksRouter } from "../ingest/sources/owntracks.ts";
import { RefusalLog, type TrackerDeps } from "../ingest/sources/tracker.ts";
import { lineMapping, mountInflux } from "../ingest/sources/influx.ts";
import { logger } from "../lib/log.ts";
import { StopStack } from "../pipeline/stop.ts";
import { connectBroker, type Broker } from "../nats/connection.ts";
import { ensureStream } from "../nats/stream.ts";
import { committedStream, dlqStream, DURABLE, MQTT_BATCH, mqttStream, pipelineStreams } from "../nats/topology.ts";
import { startMqttBridge } from "../mqtt/bridge.ts";
import { startMqttUserSync } from "../mqtt/sync.ts";
import { startNotifier, type Notifier } from "../notify/notifier.ts";
import { startRouteDelivery, type RouteDelivery } from "../notify/route-delivery.ts";
import { createSecretBox, loadOrCreateKey, parseKey } from "../notify/secrets.ts";
import { startRetention } from "../writer/retention.ts";
import { startWriter, type Writer } from "../writer/writer.ts";
import { bootstrapKeys } from "../tenants/bootstrap.ts";
import { KeyCache } from "../tenants/cache.ts";
import { DeviceRegistry } from "../tenants/devices.ts";
import { RateLimiter } from "../tenants/limits.ts";
import { startRateSharing } from "../tenants/rate-share.ts";
import { scrapeGauge } from "../lib/metrics.ts";
import { TenantLookup } from "../tenants/lookup.ts";
import { adminRoutes } from "../tenants/routes.ts";
import { provisionRoutes } from "../api/device-keys.ts";
import { exportSettings } from "../api/export.ts";
import { publicApiRoutes, tenantApiRoutes } from "./surface.ts";
import { LiveStream } from "../api/stream.ts";
import { alertStream } from "../nats/topology.ts";
import { tenantDefaults } from "../tenants/tenant.ts";
import { registerGauges } from "./gauges.ts";
import { startMemoryGovernor } from "./memory.ts";
import { startFailoverAudit } from "../replay/audit.ts";
import { cached, pingDatabase, streamReachable } from "./ready.ts";
import { claimDataDir } from "./runtime.ts";
import { databaseUrlFor, natsUrlFor } from "./services.ts";

const log = logger("server");

/** The tenant API's paths: any method or sub-path there meets the key check before a 404. */
const TENANT_API_PATHS = ["devices", "readings", "rules", "alerts", "channels", "stream", "routes"]
  .flatMap((r) => [`/api/v1/${r}`, `/api/v1/${r}/*`])
  .concat("/api/v1/dashboard/*");

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  /** TELEMETRY_OSMAND_PORT's listener, when on. */
  readonly osmandPort: number | null;
  readonly natsUrl: string;
  readonly databaseUrl: string | null;
  readonly storageMode: StorageMode | null;
  readonly writer: Writer | null;
  readonly evaluator: Evaluator | null;
  readonly notifier: Notifier | null;
  /** Message-route delivery (with the evaluator role). */
  readonly routes: RouteDelivery | null;
  readonly broker: Broker;
  /** The live stream's sessions and fan-outs (API role). */
  readonly live: LiveStream | null;
  /** The HTTP app (its routes, for tests). */
  readonly app: Hono;
  /** Set when this start generated the default key (shown once). */
  readonly generatedKey?: { tenant: string; key: string };
  stop(): Promise<void>;
}

/** Quiet time after the last leader election before the failover audit reads the stream. */
const AUDIT_SETTLE_MS = 10_000;
/**
 * Bun's own body limit, out of the way: it answers an empty 413 (before our routes run) to any
 * Content-Length above it. Every route that reads a body reads it through http/body.ts, which
 * holds it to TELEMETRY_MAX_BODY with a JSON 413; a body nobody reads is not buffered.
 */
const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** Test seams: `clock` is ingest's receive-time clock (default Date.now). */
export interface StartHooks {
  clock?: () => number;
}

export async function startServer(config: Config, hooks: StartHooks = {}): Promise<RunningServer> {
  const dataDir = resolve(config.dataDir);
  const has = (role: Config["roles"][number]) => config.roles.includes(role);
  // One budget for the whole shutdown: each draining step gets what the earlier ones left, and
  // 4 s stay for what follows (up to three pools closing at 1 s each with the database away,
  // the broker connection, supervised children).
  const drainMs = Math.max(1_000, config.shutdownTimeout - 4_000);
  const stops = new StopStack(drainMs, (err) => log.error({ err: (err as Error).message }, "shutdown step failed"));
  const onStop = (fn: () => Promise<void>) => stops.push(fn);
  const remaining = () => stops.remaining();
  const runCleanup = () => stops.run();

  try {
    // Others may traverse (the postgres OS user must reach its data when we run as root) but not list.
    mkdirSync(dataDir, { recursive: true, mode: 0o711 });
    const claim = claimDataDir(dataDir);
    onStop(async () => claim.release());
    const { url: natsUrl, serverId, mqtt: localMqtt } = await natsUrlFor(config, dataDir, onStop);
    if (!config.natsUrl) claim.update({ natsUrl }); // only embedded URLs: they carry no credentials

    // Every role needs the database: ingest reads API keys and devices from it (through caches).
    const { url: databaseUrl, kind: databaseKind } = await databaseUrlFor(config, dataDir, onStop);
    if (!config.databaseUrl) claim.update({ databaseUrl });
    const sql: Sql = createSql(databaseUrl, { max: config.databasePoolMax, name: config.roles.join("+") });
    onStop(() => sql.end({ timeout: 1 }));
    let storageMode: StorageMode | null = null;
    if (config.autoMigrate) {
      // The embedded database has no TimescaleDB (its background jobs would not run in PGlite anyway).
      storageMode = (
        await migrate(sql, migrateOptions(databaseKind === "embedded" ? { ...config, timescale: "off" } : config))
      ).mode;
    }
    log.info({ database: describeDatabase(databaseUrl), mode: storageMode ?? "not migrated" }, "database ready");
    const bootstrap = await bootstrapKeys(sql, config.apiKeys, dataDir);
    if (localMqtt) {
      const users = startMqttUserSync(sql, localMqtt, Math.min(config.authCacheTtl, 5_000));
      onStop(() => users.stop());
      await users.syncNow();
    }
    const defaults = tenantDefaults(config);
    const keys = new KeyCache(sql, {
      ttlMs: config.authCacheTtl,
      defaults,
      failuresPerMinute: config.authFailures,
      lookupsPerSecond: config.authLookupRate,
      trustedProxies: config.trustedProxies,
    });
    onStop(() => keys.stop());

    const broker: Broker = await connectBroker(natsUrl, {
      name: `telemetry ${config.roles.join(",")}`,
      timeoutMs: config.publishTimeout,
      serverId,
    });
    onStop(() => broker.close());
    for (const stream of pipelineStreams(config)) await ensureStream(broker.jsm, stream);

    const secrets = createSecretBox(
      config.secretKey ? parseKey(config.secretKey) : loadOrCreateKey(join(dataDir, "secret.key")),
    );
    // One router per group, each behind its auth: tenant key (/api/v1), admin token (/admin/v1), none.
    const routes: Hono[] = [];
    const tenantAuth = requireTenant(keys.resolve);
    const streamCheck = cached(() => streamReachable(broker, config.streamName));
    const checks: ReadyCheck[] = [
      { name: "nats", check: () => (broker.connected ? streamCheck() : Promise.resolve(false)) },
    ];
    // Not for ingest alone: it keeps accepting through a database outage.
    if (has("writer") || has("api") || has("evaluator"))
      checks.push({ name: "database", check: cached(() => pingDatabase(sql)) });

    let devices: DeviceRegistry | undefined;
    let trackers: TrackerDeps | null = null;
    if (has("ingest")) {
      const {
        streamName: stream,
        maxBodyBytes,
        recordsPerMessage,
        maxFuture: maxFutureMs,
        publishTimeout: publishTimeoutMs,
      } = config;
      await keys.warm();
      devices = new DeviceRegistry(sql);
      const options = {
        stream,
        dlqStream: dlqStream(stream),
        maxBodyBytes,
        recordsPerMessage,
        maxFutureMs,
        publishTimeoutMs,
        now: hooks.clock,
      };
      const deps = { broker, devices, limits: new RateLimiter(), options };
      if (config.rateSharing !== null) {
        // Each tenant's rate split among the live ingest processes (decision 0560).
        const sharing = await startRateSharing(broker, deps.limits, {
          intervalMs: config.rateSharing,
          replicas: config.streamReplicas,
        });
        onStop(() => sharing.stop());
        scrapeGauge(
          "telemetry_rate_share_processes",
          "Ingest processes sharing the tenants' rate limits, this one included (1: it applies the whole limits)",
          [],
          async (set) => set({}, sharing.processes()),
        );
      }
      routes.push(mountGroup("tenant", tenantAuth, ingestRoutes, deps));
      trackers = { ...deps, sql, refusals: new RefusalLog() };
      routes.push(osmandRouter(keys.resolve, trackers), owntracksRouter(keys.resolve, trackers));
      routes.push(mountInflux(keys.resolve, { ...deps, options: { ...options, lineProtocol: lineMapping(config) } }));
      if (config.mqttPort) {
        // The same device registry and rate limiter as HTTP: one policy, one set of buckets.
        const policy = {
          tenants: new TenantLookup(sql, { ttlMs: config.authCacheTtl, defaults }),
          devices,
          limits: deps.limits,
        };
        const bridge = await startMqttBridge(broker, sql, policy, {
          mqttStream: mqttStream(stream),
          stream,
          dlqStream: dlqStream(stream),
          durable: DURABLE.mqtt,
          recordsPerMessage,
          maxFutureMs,
          publishTimeoutMs,
          batch: MQTT_BATCH,
        });
        onStop(() => bridge.stop());
      }
    }

    let writer: Writer | null = null;
    if (has("writer")) {
      const w = (writer = await startWriter(broker, sql, {
        stream: config.streamName,
        committedStream: committedStream(config.streamName),
        partitions: config.evaluatorPartitions,
        durable: DURABLE.writer,
        batchSize: config.batchSize,
        flushIntervalMs: config.flushInterval,
        maxPending: config.writerMaxPending,
        ackWaitMs: config.ackWait,
      }));
      // The writer's final flush must happen before the broker connection and pool close.
      onStop(() => w.stop(remaining()));
      if (config.failoverAudit > 0) {
        const audit = await startFailoverAudit(
          { broker, sql },
          {
            stream: config.streamName,
            durable: DURABLE.writer,
            beforeMs: config.failoverAudit,
            settleMs: AUDIT_SETTLE_MS,
            batchSize: config.batchSize,
          },
        );
        if (audit) onStop(() => audit.stop());
      }
      const periods = {
        readingsMs: config.retention,
        rollupsMs: rollupRetentionMs(config.retention, config.rollupRetention),
      };
      if ((periods.readingsMs !== null || periods.rollupsMs !== null) && storageMode === "postgresql") {
        const stopRetention = startRetention(sql, periods);
        onStop(async () => stopRetention());
      }
    }

    let evaluator: Evaluator | null = null;
    let notifier: Notifier | null = null;
    let routeDelivery: RouteDelivery | null = null;
    if (has("evaluator")) {
      // Its own pool (and optionally its own database role): evaluation trouble never queues the writer's queries.
      const evalSql = createSql(config.evaluatorDatabaseUrl || databaseUrl, { max: 4, name: "evaluator" });
      onStop(() => evalSql.end({ timeout: 1 }));
      const n = (notifier = await startNotifier(
        { sql: evalSql, broker, secrets },
        { scheduleMs: config.deliverySchedule, targets: config.webhookAllow },
      ));
      const e = (evaluator = await startEvaluator(broker, evalSql, {
        stream: committedStream(config.streamName),
        durable: DURABLE.evaluator,
        noDataIntervalMs: config.noDataInterval,
        partitions: config.evaluatorPartitions,
        leaseTtlMs: config.evaluatorLease,
        replicas: config.streamReplicas,
        maxLatenessMs: config.alertMaxLateness,
        onAlerts: () => n.wake(),
      }));
      onStop(() => n.stop(remaining()));
      onStop(() => e.stop(remaining()));
      // Message routes read the telemetry stream with their own consumers and use their own
      // pool: a slow destination never holds the evaluator's connections (decision 0610).
      const routeSql = createSql(databaseUrl, { max: 4, name: "routes" });
      onStop(() => routeSql.end({ timeout: 1 }));
      const r = (routeDelivery = startRouteDelivery(
        { sql: routeSql, broker, secrets },
        { stream: config.streamName, scheduleMs: config.routeSchedule, targets: config.webhookAllow },
      ));
      onStop(() => r.stop());
    }

    let live: LiveStream | null = null;
    if (has("api")) {
      const localNotifier = notifier;
      await ensureStream(broker.jsm, alertStream()); // the live stream reads alert changes there (the notifier's settings)
      live = new LiveStream(broker, {
        stream: config.streamName,
        writerDurable: DURABLE.writer,
        maxSubscribers: config.liveMaxSubscribers,
        maxPerTenant: config.liveMaxPerTenant,
        heartbeatMs: config.liveHeartbeat,
      });
      // drizzle's postgres-js driver replaces the client's date parsers and serializers (dates become
      // strings), so it gets a client of its own and every other query keeps real Dates.
      const drizzleSql = createSql(databaseUrl, {
        max: Math.max(2, Math.ceil(config.databasePoolMax / 2)),
        name: "api",
      });
      onStop(() => drizzleSql.end({ timeout: 1 }));
      const apiDeps = {
        db: drizzle(drizzleSql),
        sql,
        broker,
        devices,
        keyCache: keys,
        onAlertChange: () => localNotifier?.wake(),
        secrets,
        targets: config.webhookAllow,
        // PGlite is one backend: a cursor would hold it for a whole export (db/export.ts).
        exports: exportSettings(
          config.exportMode === "keyset" || (config.exportMode === "auto" && databaseKind === "embedded"),
          databaseUrl,
          config.databasePoolMax,
          config.roles.join("+"),
          onStop,
        ),
        live,
        stream: config.streamName,
      };
      // Tenant keys only; device keys write readings (ingest), provisioning tokens only provision.
      const apiAuth = requireTenant(keys.resolve, bearerKey, ["tenant"]);
      routes.push(
        mountGroup("tenant", requireTenant(keys.resolve, bearerKey, ["provision"]), provisionRoutes, apiDeps),
      );
      routes.push(mountGroup("tenant", apiAuth, tenantApiRoutes, apiDeps, TENANT_API_PATHS));
      const map = {
        tiles: config.mapTileUrl,
        attribution: config.mapAttribution,
        attributionUrl: config.mapAttributionUrl,
        maxZoom: config.mapMaxZoom,
      };
      routes.push(mountGroup("none", null, publicApiRoutes, { map }));
      if (config.adminToken)
        routes.push(
          mountGroup("admin", requireAdmin(config.adminToken), adminRoutes, { sql, cache: keys, defaults }, [
            "/admin/v1/*",
          ]),
        );
    }

    const streams = {
      telemetry: config.streamName,
      committed: committedStream(config.streamName),
      dlq: dlqStream(config.streamName),
      mqtt: config.mqttPort && has("ingest") ? mqttStream(config.streamName) : null,
    };
    registerGauges({ broker, sql, writer, streams });
    const memory = startMemoryGovernor(config.softMemoryLimit);
    onStop(async () => memory.stop());
    let shuttingDown = false;
    const app = buildApp(routes, checks, () => shuttingDown, {
      maxBodyBytes: config.maxBodyBytes,
      secretPaths: [...OSMAND_SECRET_PATHS, ...OWNTRACKS_SECRET_PATHS],
    });
    const http = Bun.serve({
      hostname: config.host,
      port: config.port,
      fetch: app.fetch,
      maxRequestBodySize: UNLIMITED,
    });
    onStop(async () => {
      await http.stop(false);
    });
    // Before the HTTP server's stop, which waits for open responses: live streams never end by themselves.
    if (live) onStop(() => live.close());
    let osmand: ReturnType<typeof Bun.serve> | null = null;
    if (trackers && config.osmandPort) {
      // Every path of this port carries a key (Traccar's port ignores the path): all are redacted.
      const portApp = buildApp([osmandPortRouter(keys.resolve, trackers)], checks, () => shuttingDown, {
        maxBodyBytes: config.maxBodyBytes,
        secretPaths: ["/"],
      });
      const server = (osmand = Bun.serve({
        hostname: config.host,
        port: config.osmandPort,
        fetch: portApp.fetch,
        maxRequestBodySize: UNLIMITED,
      }));
      onStop(async () => {
        await server.stop(false);
      });
      log.info({ port: server.port }, "OsmAnd / Traccar Client port listening");
    }
    const url = `http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${http.port}`;
    log.info({ url, roles: config.roles }, "telemetry serving");

    let stopped: Promise<void> | null = null;
    return {
      url,
      port: http.port!,
      osmandPort: osmand?.port ?? null,
      natsUrl,
      databaseUrl,
      storageMode,
      writer,
      evaluator,
      notifier,
      routes: routeDelivery,
      broker,
      live,
      app,
      generatedKey: bootstrap.generated,
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
