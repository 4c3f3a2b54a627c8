/**
 * Every setting, once: its key, environment variable, flag, default, documentation and zod parser.
 * The README's configuration table and `--help` are derived from this table.
 */
import { z } from "zod";
import { parseDuration } from "../core/duration.ts";
import type { RollupRetention } from "../core/retention.ts";
import { parseCidr } from "../core/address.ts";
import { DATABASE_CHOICES } from "../core/database-mode.ts";
import { PLAUSIBLE_KEY } from "../core/key-guard.ts";
import { TENANT_ID_PATTERN } from "../core/subject.ts";
import { tileSource } from "../core/map-tiles.ts";
import { parseAllowList } from "../core/target-policy.ts";

export const ROLES = ["ingest", "writer", "evaluator", "api"] as const;
export type Role = (typeof ROLES)[number];

const duration = (min = 0) =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === null) {
      ctx.addIssue({
        code: "custom",
        message: `must be a duration like 500ms, 30s, 2m, 72h or 7d, got ${JSON.stringify(text)}`,
      });
      return z.NEVER;
    }
    if (ms < min) {
      ctx.addIssue({ code: "custom", message: `must be at least ${min} ms, got ${JSON.stringify(text)}` });
      return z.NEVER;
    }
    return ms;
  });

const optionalDuration = z.string().transform((text, ctx) => {
  if (["", "off", "none", "0"].includes(text.trim().toLowerCase())) return null;
  const ms = parseDuration(text);
  if (ms === null || ms <= 0) {
    ctx.addIssue({ code: "custom", message: `must be a duration like 30d or "off", got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return ms;
});

/** A duration, a multiple ("4x") of another duration, or off. */
const durationOrMultiple = z.string().transform((text, ctx): RollupRetention => {
  const times = /^(\d+(?:\.\d+)?)x$/i.exec(text.trim());
  if (times && Number(times[1]) >= 1) return { times: Number(times[1]) };
  const ms = optionalDuration.safeParse(text);
  if (!times && ms.success) return ms.data === null ? null : { ms: ms.data };
  ctx.addIssue({
    code: "custom",
    message: `must be a duration like 400d, a multiple of TELEMETRY_RETENTION like 4x (at least 1x), or "off", got ${JSON.stringify(text)}`,
  });
  return z.NEVER;
});

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.string().transform((text, ctx) => {
    const n = Number(text.trim());
    if (text.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({
        code: "custom",
        message: `must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
      });
      return z.NEVER;
    }
    return n;
  });

/** A comma-separated list of at least `min` names (tag, field or measurement names). */
const names = (min: number) =>
  z.string().transform((text, ctx) => {
    const list = [
      ...new Set(
        text
          .split(",")
          .map((n) => n.trim())
          .filter(Boolean),
      ),
    ];
    if (list.length < min) {
      ctx.addIssue({ code: "custom", message: `must be a comma-separated list of names, got ${JSON.stringify(text)}` });
      return z.NEVER;
    }
    return list;
  });

const positive = z.string().transform((text, ctx) => {
  const n = Number(text.trim());
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0) {
    ctx.addIssue({ code: "custom", message: `must be a positive number, got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return n;
});

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  kib: 1024,
  mb: 1e6,
  mib: 1024 ** 2,
  gb: 1e9,
  gib: 1024 ** 3,
};
const byteSize = z.string().transform((text, ctx) => {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) * unit < 1) {
    ctx.addIssue({
      code: "custom",
      message: `must be a size like 1MiB, 512KiB or 1048576, got ${JSON.stringify(text)}`,
    });
    return z.NEVER;
  }
  return Math.floor(Number(m[1]) * unit);
});

/** A size, or off (0). */
const sizeOrOff = z.string().transform((text, ctx) => {
  if (["off", "0"].includes(text.trim().toLowerCase())) return 0;
  const size = byteSize.safeParse(text);
  if (size.success) return size.data;
  ctx.addIssue({ code: "custom", message: `must be a size like 192MiB, or off, got ${JSON.stringify(text)}` });
  return z.NEVER;
});

const bool = z.string().transform((text, ctx) => {
  const t = text.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(t)) return true;
  if (["0", "false", "no", "off"].includes(t)) return false;
  ctx.addIssue({ code: "custom", message: `must be true or false, got ${JSON.stringify(text)}` });
  return z.NEVER;
});

const roles = z.string().transform((text, ctx) => {
  const list = text
    .split(",")
    .map((r) => r.trim())
    .filter(Boolean);
  const bad = list.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (list.length === 0 || bad.length > 0) {
    ctx.addIssue({
      code: "custom",
      message: `must be a comma-separated list of ${ROLES.join(", ")}; unknown: ${bad.join(", ") || "(empty)"}`,
    });
    return z.NEVER;
  }
  return [...new Set(list)] as Role[];
});

export interface ApiKey {
  tenant: string;
  key: string;
}

const apiKeys = z.string().transform((text, ctx) => {
  const keys: ApiKey[] = [];
  for (const [i, pair] of text
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)
    .entries()) {
    const at = pair.indexOf(":");
    const tenant = at > 0 ? pair.slice(0, at) : "";
    const key = at > 0 ? pair.slice(at + 1) : "";
    if (!TENANT_ID_PATTERN.test(tenant)) {
      ctx.addIssue({
        code: "custom",
        message: `entry ${i + 1}: tenant must match ${TENANT_ID_PATTERN} (entries are tenant:key)`,
      });
    } else if (key.length < 16) {
      ctx.addIssue({
        code: "custom",
        message: `entry ${i + 1} (tenant ${tenant}): key must be at least 16 characters`,
      });
    } else if (!PLAUSIBLE_KEY.test(key)) {
      ctx.addIssue({
        code: "custom",
        message: `entry ${i + 1} (tenant ${tenant}): key must be at most 512 visible ASCII characters (no spaces)`,
      });
    } else {
      keys.push({ tenant, key });
    }
  }
  return keys;
});

const url = (protocols: string[]) =>
  z.string().refine(
    (text) => {
      if (text === "") return true;
      return text.split(",").every((u) => {
        try {
          return protocols.includes(new URL(u.includes("://") ? u : `nats://${u}`).protocol);
        } catch {
          return false;
        }
      });
    },
    `must be empty (use the embedded default) or a ${protocols.join("/")} URL`,
  );

interface Setting {
  env: string;
  flag: string;
  default: string;
  doc: string;
  secret?: boolean;
}

/** Documentation and sources of every setting; `parser` below gives each its type. */
export const SETTINGS = {
  roles: { env: "TELEMETRY_ROLES", flag: "roles", default: ROLES.join(","), doc: "Roles this process runs" },
  host: { env: "HOST", flag: "host", default: "0.0.0.0", doc: "HTTP listen address" },
  port: { env: "PORT", flag: "port", default: "8080", doc: "HTTP listen port" },
  dataDir: {
    env: "TELEMETRY_DATA_DIR",
    flag: "data-dir",
    default: "./data",
    doc: "Where the embedded nats-server and PostgreSQL keep their data",
  },
  natsUrl: {
    env: "NATS_URL",
    flag: "nats-url",
    default: "",
    doc: "NATS server(s); empty starts and supervises a local nats-server -js",
  },
  natsLocalPort: {
    env: "TELEMETRY_NATS_PORT",
    flag: "nats-port",
    default: "4222",
    doc: "Port of the supervised local nats-server (loopback only; 0 picks a free one at each start). A port in use is an error at start: the server never uses a broker it did not start unless NATS_URL names it",
  },
  mqttPort: {
    env: "TELEMETRY_MQTT_PORT",
    flag: "mqtt-port",
    default: "0",
    doc: "MQTT 3.1.1 ingest: the supervised nats-server listens for devices on this port (0: off); with NATS_URL, the ingest role bridges MQTT messages your nats-server's mqtt listener receives",
  },
  osmandPort: {
    env: "TELEMETRY_OSMAND_PORT",
    flag: "osmand-port",
    default: "0",
    doc: "OsmAnd / Traccar Client ingest on a port of its own (0: off; Traccar uses 5055), on HOST, for the ingest role: any path and method, the key as the first path segment (http://host:5055/<key>) or ?key=. /osmand/<key> on PORT works either way",
  },
  mqttHost: {
    env: "TELEMETRY_MQTT_HOST",
    flag: "mqtt-host",
    default: "0.0.0.0",
    doc: "Listen address of the supervised nats-server's MQTT listener",
  },
  mqttStreamMaxBytes: {
    env: "TELEMETRY_MQTT_STREAM_MAX_BYTES",
    flag: "mqtt-stream-max-bytes",
    default: "1GiB",
    doc: "Most bytes the MQTT stream (TELEMETRY_MQTT) keeps for the bridge; when it is full, new MQTT messages are discarded and the stored ones kept (nats-server 2.9 still PUBACKs them: they are lost)",
  },
  natsServerBin: {
    env: "TELEMETRY_NATS_SERVER_BIN",
    flag: "nats-server-bin",
    default: "auto",
    doc: "Which nats-server to supervise: auto (the one embedded in the executable, extracted into <data dir>/bin; else as path), embedded (only that one), path (the first on PATH, then /usr/sbin, /usr/local/bin), or an absolute path of a nats-server binary",
  },
  natsSync: {
    env: "TELEMETRY_NATS_SYNC",
    flag: "nats-sync",
    default: "",
    doc: "Supervised nats-server's JetStream sync_interval (e.g. always, 10s; needs nats-server >= 2.10); empty keeps its lazy default",
  },
  databaseUrl: {
    env: "DATABASE_URL",
    flag: "database-url",
    default: "",
    doc: "PostgreSQL URL; empty starts and supervises a local PostgreSQL in the data dir",
    secret: true,
  },
  postgresBinDir: {
    env: "TELEMETRY_POSTGRES_BIN_DIR",
    flag: "postgres-bin-dir",
    default: "auto",
    doc: "PostgreSQL server binaries (postgres, initdb, pg_ctl) for the supervised PostgreSQL: auto (the postgres on PATH, else the newest /usr/lib/postgresql/<version>/bin), none (use no local PostgreSQL binaries, as on a machine without them), or an absolute directory path",
  },
  database: {
    env: "TELEMETRY_DATABASE",
    flag: "database",
    default: "auto",
    doc: "Without DATABASE_URL: postgres (supervise a local PostgreSQL; its server binaries are required), embedded (PGlite in this process, data in <data dir>/pglite; for trying out and small installations), or auto (the database the data dir already holds, else PostgreSQL if its binaries are found, else embedded)",
  },
  databasePoolMax: {
    env: "TELEMETRY_DB_POOL_MAX",
    flag: "db-pool-max",
    default: "10",
    doc: "Maximum PostgreSQL connections",
  },
  exportMode: {
    env: "TELEMETRY_EXPORT_MODE",
    flag: "export-mode",
    default: "auto",
    doc: "How exports read the database: copy (COPY TO STDOUT on a client of their own, flat memory), keyset (one short query per 250 rows on the shared pool, for servers without COPY TO STDOUT, e.g. PGlite behind a socket), or auto (keyset for the embedded database, else copy)",
  },
  timescale: {
    env: "TELEMETRY_TIMESCALE",
    flag: "timescale",
    default: "auto",
    doc: "Use TimescaleDB: auto (when available), on (required), off",
  },
  autoMigrate: {
    env: "TELEMETRY_AUTO_MIGRATE",
    flag: "auto-migrate",
    default: "true",
    doc: "Apply pending migrations when serve starts",
  },
  apiKeys: {
    env: "TELEMETRY_API_KEYS",
    flag: "api-keys",
    default: "",
    doc: "Bootstrap keys as tenant:key,tenant:key, added (hashed) with their tenants to the key store at start; with none and an empty store, one key for tenant 'default' is generated",
    secret: true,
  },
  adminToken: {
    env: "TELEMETRY_ADMIN_TOKEN",
    flag: "admin-token",
    default: "",
    doc: "Bearer token of the admin API (/admin/v1, tenants and keys); empty disables it",
    secret: true,
  },
  authCacheTtl: {
    env: "TELEMETRY_AUTH_CACHE_TTL",
    flag: "auth-cache-ttl",
    default: "5s",
    doc: "How old a cached key answer (its tenant's status, policy and limits) may get; from 3/4 of it a request re-reads it in the background, never waiting (revocation and suspension take effect within this, see The key cache)",
  },
  authFailures: {
    env: "TELEMETRY_AUTH_FAILURES",
    flag: "auth-failures",
    default: "30",
    doc: "Failed key checks (unknown, revoked or malformed keys) one client address may make per minute (also the burst; IPv6 per /64); beyond them its keys not in the key cache get 429 without a lookup",
  },
  authLookupRate: {
    env: "TELEMETRY_AUTH_LOOKUP_RATE",
    flag: "auth-lookup-rate",
    default: "100",
    doc: "Key-store lookups of keys not in the key cache per second, per process (also the burst); beyond them such keys get 503 auth_busy",
  },
  trustedProxies: {
    env: "TELEMETRY_TRUSTED_PROXIES",
    flag: "trusted-proxies",
    default: "",
    doc: "Reverse proxies (IP addresses or CIDRs, comma-separated) whose X-Forwarded-For names the client for TELEMETRY_AUTH_FAILURES; empty: the socket's peer is the client, no header is trusted",
  },
  tenantRate: {
    env: "TELEMETRY_TENANT_RATE",
    flag: "tenant-rate",
    default: "50000",
    doc: "Default records per second of a tenant (token bucket), shared by the ingest processes unless TELEMETRY_RATE_SHARING is off",
  },
  tenantBurst: {
    env: "TELEMETRY_TENANT_BURST",
    flag: "tenant-burst",
    default: "100000",
    doc: "Default burst of a tenant's bucket, in records",
  },
  deviceRate: {
    env: "TELEMETRY_DEVICE_RATE",
    flag: "device-rate",
    default: "100",
    doc: "Default records per second of one device, per ingest process",
  },
  deviceBurst: {
    env: "TELEMETRY_DEVICE_BURST",
    flag: "device-burst",
    default: "1000",
    doc: "Default burst of a device's bucket, in records",
  },
  rateSharing: {
    env: "TELEMETRY_RATE_SHARING",
    flag: "rate-sharing",
    default: "1s",
    doc: "How often each ingest process announces its per-tenant demand in the NATS KV bucket telemetry_rates and re-splits each tenant's rate and burst among the live ingest processes (by demand, see Scale-out); off: every process applies the whole limit (N processes allow N times the rate)",
  },
  maxDevices: {
    env: "TELEMETRY_MAX_DEVICES",
    flag: "max-devices",
    default: "10000",
    doc: "Default most devices of a tenant",
  },
  streamName: { env: "TELEMETRY_STREAM", flag: "stream", default: "TELEMETRY", doc: "JetStream stream name" },
  streamMaxAge: {
    env: "TELEMETRY_STREAM_MAX_AGE",
    flag: "stream-max-age",
    default: "72h",
    doc: "How long the stream keeps readings (replay horizon)",
  },
  streamDuplicateWindow: {
    env: "TELEMETRY_DUPLICATE_WINDOW",
    flag: "duplicate-window",
    default: "2m",
    doc: "JetStream duplicate window for Nats-Msg-Id",
  },
  streamReplicas: {
    env: "TELEMETRY_STREAM_REPLICAS",
    flag: "stream-replicas",
    default: "1",
    doc: "Stream replicas (3 on a NATS cluster)",
  },
  batchSize: {
    env: "TELEMETRY_BATCH_SIZE",
    flag: "batch-size",
    default: "2000",
    doc: "Writer flushes at this many readings (or a third of the max pending messages)...",
  },
  flushInterval: {
    env: "TELEMETRY_FLUSH_INTERVAL",
    flag: "flush-interval",
    default: "1000ms",
    doc: "...or when the oldest held reading is this old",
  },
  failoverAudit: {
    env: "TELEMETRY_FAILOVER_AUDIT",
    flag: "failover-audit",
    default: "60s",
    doc: "Replicated streams: after a stream or writer-consumer leader election, re-apply the stream from this long before it (idempotent) to write what the consumer skipped; off disables",
  },
  writerMaxPending: {
    env: "TELEMETRY_WRITER_MAX_PENDING",
    flag: "writer-max-pending",
    default: "2000",
    doc: "Most broker messages the writer holds unacknowledged (bounds its memory)",
  },
  ackWait: {
    env: "TELEMETRY_ACK_WAIT",
    flag: "ack-wait",
    default: "30s",
    doc: "Redelivery timeout of an unacknowledged message",
  },
  liveMaxSubscribers: {
    env: "TELEMETRY_LIVE_MAX_SUBSCRIBERS",
    flag: "live-max-subscribers",
    default: "5000",
    doc: "Most live streams (GET /api/v1/stream) one API process serves at once; beyond, 503 stream_capacity",
  },
  liveMaxPerTenant: {
    env: "TELEMETRY_LIVE_MAX_PER_TENANT",
    flag: "live-max-per-tenant",
    default: "1000",
    doc: "Most live streams of one tenant on one API process; beyond, 429 too_many_streams",
  },
  liveHeartbeat: {
    env: "TELEMETRY_LIVE_HEARTBEAT",
    flag: "live-heartbeat",
    default: "15s",
    doc: "How often an idle live stream gets a comment line, so proxies keep the connection",
  },
  retention: {
    env: "TELEMETRY_RETENTION",
    flag: "retention",
    default: "off",
    doc: "Drop readings older than this (e.g. 90d); off keeps everything",
  },
  rollupRetention: {
    env: "TELEMETRY_ROLLUP_RETENTION",
    flag: "rollup-retention",
    default: "4x",
    doc: "Drop 1-minute rollups (readings_1m) older than this: a duration (400d), a multiple of TELEMETRY_RETENTION (4x; keeps everything while that is off), or off",
  },
  compressAfter: {
    env: "TELEMETRY_COMPRESS_AFTER",
    flag: "compress-after",
    default: "7d",
    doc: "TimescaleDB: compress chunks (of readings and readings_1m) older than this",
  },
  maxFuture: {
    env: "TELEMETRY_MAX_FUTURE",
    flag: "max-future",
    default: "1h",
    doc: "Reject timestamps further than this in the future",
  },
  maxBodyBytes: {
    env: "TELEMETRY_MAX_BODY",
    flag: "max-body",
    default: "1MiB",
    doc: "Largest accepted request body, as sent and once gzip/deflate-decoded (413 above)",
  },
  maxRecordsPerRequest: {
    env: "TELEMETRY_MAX_RECORDS",
    flag: "max-records",
    default: "10000",
    doc: "Default most records in one request (per tenant: max_records_per_request)",
  },
  lpDeviceTags: {
    env: "TELEMETRY_LP_DEVICE_TAGS",
    flag: "lp-device-tags",
    default: "device,host",
    doc: "Line protocol: the tags that name the device, first present wins (per tenant: line_protocol.device_tags)",
  },
  lpBareMeasurements: {
    env: "TELEMETRY_LP_BARE_MEASUREMENTS",
    flag: "lp-bare-measurements",
    default: "",
    doc: "Line protocol: measurements whose fields are metrics by their own name, not {measurement}_{field} (per tenant: line_protocol.bare_measurements)",
  },
  lpLatFields: {
    env: "TELEMETRY_LP_LAT_FIELDS",
    flag: "lp-lat-fields",
    default: "lat,latitude",
    doc: "Line protocol: the fields that are a latitude (per tenant: line_protocol.lat_fields)",
  },
  lpLonFields: {
    env: "TELEMETRY_LP_LON_FIELDS",
    flag: "lp-lon-fields",
    default: "lon,lng,longitude",
    doc: "Line protocol: the fields that are a longitude (per tenant: line_protocol.lon_fields)",
  },
  lpSeriesTags: {
    env: "TELEMETRY_LP_SERIES_TAGS",
    flag: "lp-series-tags",
    default: "",
    doc: "Line protocol: tags whose values join the metric name and the reading's identity, e.g. cpu: cpu_usage_user.cpu0 (per tenant: line_protocol.series_tags)",
  },
  recordsPerMessage: {
    env: "TELEMETRY_RECORDS_PER_MESSAGE",
    flag: "records-per-message",
    default: "100",
    doc: "Most readings of one device carried by one broker message",
  },
  publishTimeout: {
    env: "TELEMETRY_PUBLISH_TIMEOUT",
    flag: "publish-timeout",
    default: "2s",
    doc: "How long ingest waits for one JetStream ack (3 retries follow, then 503 or the dead-letter stream)",
  },
  dlqMaxAge: {
    env: "TELEMETRY_DLQ_MAX_AGE",
    flag: "dlq-max-age",
    default: "7d",
    doc: "How long the dead-letter stream keeps messages that could not be stored",
  },
  softMemoryLimit: {
    env: "TELEMETRY_SOFT_MEMORY_LIMIT",
    flag: "soft-memory-limit",
    default: "192MiB",
    doc: "Above this RSS, while the JS heap is at least a third of it, the process asks for a concurrent full garbage collection, and forces a synchronous one (a pause) only above 1.2 times it (checked every 0.5 s, each at most once a second); off disables",
  },
  jscRamSize: {
    env: "TELEMETRY_JSC_RAM_SIZE",
    flag: "jsc-ram-size",
    default: "512MiB",
    doc: "The memory JavaScriptCore sizes its heap growth for (BUN_JSC_forceRAMSize) instead of the machine's RAM, so garbage is collected early, in small pieces: `serve` re-executes itself once with it (same pid, arguments and stdio) unless BUN_JSC_forceRAMSize is already set; off keeps the machine's RAM",
  },
  shutdownTimeout: {
    env: "TELEMETRY_SHUTDOWN_TIMEOUT",
    flag: "shutdown-timeout",
    default: "30s",
    doc: "Graceful shutdown limit",
  },
  evaluatorDatabaseUrl: {
    env: "TELEMETRY_EVALUATOR_DATABASE_URL",
    flag: "evaluator-database-url",
    default: "",
    doc: "Evaluator's own database URL (its own pool; e.g. another role); empty uses DATABASE_URL",
    secret: true,
  },
  noDataInterval: {
    env: "TELEMETRY_NODATA_INTERVAL",
    flag: "nodata-interval",
    default: "30s",
    doc: "How often no_data (deadman) rules are checked",
  },
  evaluatorPartitions: {
    env: "TELEMETRY_EVALUATOR_PARTITIONS",
    flag: "evaluator-partitions",
    default: "16",
    doc: "Evaluation partitions: the writer cuts committed-batch events by device into this many, and evaluator processes share them with leases (decision 0550); the same on every process; more partitions than evaluator processes",
  },
  evaluatorLease: {
    env: "TELEMETRY_EVALUATOR_LEASE",
    flag: "evaluator-lease",
    default: "10s",
    doc: "How long an evaluator process keeps its partitions without renewing them (renewed every third of it): a process killed without a clean stop hands them over after this",
  },
  alertMaxLateness: {
    env: "TELEMETRY_ALERT_MAX_LATENESS",
    flag: "alert-max-lateness",
    default: "10m",
    doc: "Readings received more than this after their own time (buffered uploads) are stored but not evaluated by threshold, deviation, rate and geofence rules; a rule's max_lateness_seconds overrides it; 0 evaluates every reading",
  },
  secretKey: {
    env: "TELEMETRY_SECRET_KEY",
    flag: "secret-key",
    default: "",
    doc: "Base64 32-byte key encrypting channel secrets at rest; empty uses (or creates) <data dir>/secret.key",
    secret: true,
  },
  deliverySchedule: {
    env: "TELEMETRY_DELIVERY_SCHEDULE",
    flag: "delivery-schedule",
    default: "0,5s,5m,30m,2h,5h,10h",
    doc: "Webhook retry delays, attempt by attempt; after the last, a delivery is failed",
  },
  routeSchedule: {
    env: "TELEMETRY_ROUTE_SCHEDULE",
    flag: "route-schedule",
    default: "0,1s,5s,30s,2m,10m,30m",
    doc: "Message-route retry delays, attempt by attempt; after the last, a batch goes to the route's failed list",
  },
  webhookAllow: {
    env: "TELEMETRY_WEBHOOK_ALLOW",
    flag: "webhook-allow",
    default: "",
    doc: "Webhook and hub targets allowed although not public: comma-separated host names (whatever they resolve to), IP addresses and CIDR ranges, e.g. hub.internal,10.1.0.0/16,127.0.0.1; empty allows public unicast addresses only",
  },
  mapTileUrl: {
    env: "TELEMETRY_MAP_TILE_URL",
    flag: "map-tile-url",
    default: "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    doc: "The dashboard map's tile URL template ({z}/{x}/{y}, optional {s} as the host's first label): OpenStreetMap's by default; a self-hosted tile server (an http(s) URL or a path on this server) for air-gapped sites. The page's CSP allows images from its origin",
  },
  mapAttribution: {
    env: "TELEMETRY_MAP_ATTRIBUTION",
    flag: "map-attribution",
    default: "© OpenStreetMap contributors",
    doc: "The map's attribution text (shown as text, linked to TELEMETRY_MAP_ATTRIBUTION_URL)",
  },
  mapAttributionUrl: {
    env: "TELEMETRY_MAP_ATTRIBUTION_URL",
    flag: "map-attribution-url",
    default: "https://www.openstreetmap.org/copyright",
    doc: "Where the attribution links to (empty: no link)",
  },
  mapMaxZoom: {
    env: "TELEMETRY_MAP_MAX_ZOOM",
    flag: "map-max-zoom",
    default: "19",
    doc: "The deepest zoom level the tile server has",
  },
  logLevel: { env: "LOG_LEVEL", flag: "log-level", default: "info", doc: "trace, debug, info, warn, error" },
} as const satisfies Record<string, Setting>;

export type SettingKey = keyof typeof SETTINGS;

/** A retry schedule: delays attempt by attempt. */
const schedule = z.string().transform((text, ctx) => {
  const list = text.split(",").map((p) => parseDuration(p.trim()));
  if (list.length === 0 || list.some((ms) => ms === null)) {
    ctx.addIssue({
      code: "custom",
      message: `must be a comma-separated list of durations like 0,5s,5m, got ${JSON.stringify(text)}`,
    });
    return z.NEVER;
  }
  return list as number[];
});

export const configSchema = z.object({
  roles,
  host: z.string().min(1, "must not be empty"),
  port: int(0, 65535),
  dataDir: z.string().min(1, "must not be empty"),
  natsUrl: url(["nats:", "tls:", "ws:", "wss:"]),
  natsLocalPort: int(0, 65535),
  mqttPort: int(0, 65535),
  osmandPort: int(0, 65535),
  mqttHost: z.string().min(1, "must not be empty"),
  mqttStreamMaxBytes: byteSize,
  natsServerBin: z
    .string()
    .refine(
      (t) => ["auto", "embedded", "path"].includes(t) || t.startsWith("/"),
      "must be auto, embedded, path or the absolute path of a nats-server binary",
    ),
  natsSync: z
    .string()
    .refine(
      (t) => t === "" || t === "always" || parseDuration(t) !== null,
      "must be empty, always, or a duration like 10s",
    ),
  databaseUrl: url(["postgres:", "postgresql:"]),
  postgresBinDir: z
    .string()
    .refine(
      (t) => t === "auto" || t === "none" || t.startsWith("/"),
      "must be auto, none or the absolute path of a directory holding postgres, initdb and pg_ctl",
    ),
  database: z.enum(DATABASE_CHOICES, { error: `must be ${DATABASE_CHOICES.join(", ")}` }),
  databasePoolMax: int(1, 1000),
  exportMode: z.enum(["auto", "copy", "keyset"], { error: "must be auto, copy or keyset" }),
  timescale: z.enum(["auto", "on", "off"], { error: "must be auto, on or off" }),
  autoMigrate: bool,
  apiKeys,
  adminToken: z
    .string()
    .refine((t) => t === "" || t.length >= 16, "must be empty (admin API off) or at least 16 characters"),
  authCacheTtl: duration(100),
  authFailures: int(1, 1_000_000),
  authLookupRate: int(1, 1_000_000),
  trustedProxies: z.string().transform((text, ctx) => {
    const list = text
      .split(",")
      .map((p) => p.trim())
      .filter(Boolean);
    const bad = list.filter((p) => parseCidr(p) === null);
    if (bad.length > 0) {
      ctx.addIssue({
        code: "custom",
        message: `must be IP addresses or CIDRs like 10.0.0.0/8, comma-separated; not: ${bad.join(", ")}`,
      });
      return z.NEVER;
    }
    return list;
  }),
  tenantRate: positive,
  tenantBurst: int(1),
  deviceRate: positive,
  deviceBurst: int(1),
  rateSharing: optionalDuration.refine((ms) => ms === null || ms >= 100, "must be at least 100ms, or off"),
  maxDevices: int(1),
  streamName: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'"),
  streamMaxAge: duration(60_000),
  streamDuplicateWindow: duration(1_000),
  streamReplicas: int(1, 5),
  batchSize: int(1, 100_000),
  flushInterval: duration(1),
  writerMaxPending: int(1, 1_000_000),
  ackWait: duration(1_000),
  liveMaxSubscribers: int(1, 1_000_000),
  liveMaxPerTenant: int(1, 1_000_000),
  liveHeartbeat: duration(100),
  retention: optionalDuration,
  rollupRetention: durationOrMultiple,
  compressAfter: duration(60_000),
  maxFuture: duration(0),
  maxBodyBytes: byteSize,
  maxRecordsPerRequest: int(1, 1_000_000),
  lpDeviceTags: names(1),
  lpBareMeasurements: names(0),
  lpLatFields: names(1),
  lpLonFields: names(1),
  lpSeriesTags: names(0),
  recordsPerMessage: int(1, 10_000),
  publishTimeout: duration(100),
  dlqMaxAge: duration(60_000),
  failoverAudit: optionalDuration.transform((ms) => ms ?? 0),
  softMemoryLimit: sizeOrOff,
  jscRamSize: sizeOrOff,
  shutdownTimeout: duration(100),
  evaluatorDatabaseUrl: url(["postgres:", "postgresql:"]),
  noDataInterval: duration(100),
  evaluatorPartitions: int(1, 256),
  evaluatorLease: duration(1000),
  alertMaxLateness: duration(0),
  secretKey: z
    .string()
    .refine(
      (t) => t === "" || Buffer.from(t, "base64").length === 32,
      "must be empty or the base64 of 32 bytes (openssl rand -base64 32)",
    ),
  deliverySchedule: schedule,
  routeSchedule: schedule,
  mapTileUrl: z.string().transform((text, ctx) => {
    const source = tileSource(text);
    if ("error" in source) {
      ctx.addIssue({ code: "custom", message: source.error });
      return z.NEVER;
    }
    return source;
  }),
  mapAttribution: z.string().max(500, "must be at most 500 characters"),
  mapAttributionUrl: z
    .string()
    .refine((t) => t === "" || /^https?:\/\/[^\s"'<>]+$/.test(t), "must be empty or an http(s) URL"),
  mapMaxZoom: int(1, 24),
  webhookAllow: z.string().transform((text, ctx) => {
    const { policy, problems } = parseAllowList(text);
    for (const message of problems) ctx.addIssue({ code: "custom", message });
    // `config show` prints the list as given, not the parsed ranges
    return Object.assign(policy, {
      toJSON: () =>
        text
          .split(",")
          .map((e) => e.trim())
          .filter(Boolean)
          .join(","),
    });
  }),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], {
    error: "must be trace, debug, info, warn, error or silent",
  }),
});

export type Config = z.output<typeof configSchema>;
