/**
 * Drizzle table definitions for typed queries. The SQL in migrations/ is the source of truth for
 * the database; a test checks that these definitions match the migrated tables column by column.
 */
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  integer,
  json,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import type { Condition } from "../core/rules/schema.ts";

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const readings = pgTable(
  "readings",
  {
    tenant: text("tenant").notNull(),
    deviceId: text("device_id").notNull(),
    ts: tstz("ts").notNull(),
    eventId: uuid("event_id").notNull(),
    lat: doublePrecision("lat"),
    lon: doublePrecision("lon"),
    metrics: jsonb("metrics").$type<Record<string, number>>(),
    attributes: jsonb("attributes").$type<Record<string, string | number | boolean | null>>(),
    receivedAt: tstz("received_at").notNull(),
  },
  (t) => [primaryKey({ name: "readings_pkey", columns: [t.tenant, t.deviceId, t.ts, t.eventId] })],
);

export const devices = pgTable(
  "devices",
  {
    tenant: text("tenant").notNull(),
    deviceId: text("device_id").notNull(),
    firstSeen: tstz("first_seen").notNull(),
    lastSeen: tstz("last_seen").notNull(),
    lastReceivedAt: tstz("last_received_at").notNull(),
    lastLat: doublePrecision("last_lat"),
    lastLon: doublePrecision("last_lon"),
    lastLocationAt: tstz("last_location_at"),
  },
  (t) => [primaryKey({ name: "devices_pkey", columns: [t.tenant, t.deviceId] })],
);

export const quarantine = pgTable("quarantine", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  source: text("source").notNull(),
  subject: text("subject"),
  streamSeq: bigint("stream_seq", { mode: "number" }),
  reason: text("reason").notNull(),
  payload: text("payload").notNull(),
  createdAt: tstz("created_at").notNull().defaultNow(),
});

export const telemetryMeta = pgTable("telemetry_meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

export const readings1m = pgTable(
  "readings_1m",
  {
    tenant: text("tenant").notNull(),
    deviceId: text("device_id").notNull(),
    metric: text("metric").notNull(),
    bucket: tstz("bucket").notNull(),
    count: bigint("count", { mode: "number" }).notNull(),
    sum: doublePrecision("sum").notNull(),
    sumSq: doublePrecision("sum_sq").notNull(),
    min: doublePrecision("min").notNull(),
    max: doublePrecision("max").notNull(),
  },
  (t) => [primaryKey({ name: "readings_1m_pkey", columns: [t.tenant, t.deviceId, t.metric, t.bucket] })],
);

export const rules = pgTable("rules", {
  id: uuid("id").primaryKey(),
  tenant: text("tenant").notNull(),
  name: text("name").notNull(),
  enabled: boolean("enabled").notNull().default(true),
  severity: text("severity").notNull(),
  metric: text("metric"),
  devices: text("devices").array(),
  condition: jsonb("condition").notNull().$type<Condition>(),
  forSeconds: integer("for_seconds").notNull().default(0),
  cooldownSeconds: integer("cooldown_seconds").notNull().default(900),
  createdAt: tstz("created_at").notNull().defaultNow(),
  updatedAt: tstz("updated_at").notNull().defaultNow(),
  maxLatenessSeconds: integer("max_lateness_seconds"),
});

export const ruleState = pgTable(
  "rule_state",
  {
    ruleId: uuid("rule_id").notNull(),
    deviceId: text("device_id").notNull(),
    active: boolean("active").notNull().default(false),
    activeSince: tstz("active_since"),
    lastAlertAt: tstz("last_alert_at"),
    lastValue: doublePrecision("last_value"),
    lastTs: tstz("last_ts"),
    inside: boolean("inside"),
    updatedAt: tstz("updated_at").notNull().defaultNow(),
    lastArrival: tstz("last_arrival"),
  },
  (t) => [primaryKey({ name: "rule_state_pkey", columns: [t.ruleId, t.deviceId] })],
);

export const alerts = pgTable("alerts", {
  id: uuid("id").primaryKey(),
  tenant: text("tenant").notNull(),
  ruleId: uuid("rule_id").notNull(),
  ruleName: text("rule_name").notNull(),
  deviceId: text("device_id").notNull(),
  metric: text("metric"),
  severity: text("severity").notNull(),
  kind: text("kind").notNull(),
  status: text("status").notNull().default("open"),
  value: doublePrecision("value"),
  message: text("message").notNull(),
  details: jsonb("details").notNull().default({}).$type<Record<string, unknown>>(),
  triggeredAt: tstz("triggered_at").notNull(),
  triggerEventId: uuid("trigger_event_id"),
  createdAt: tstz("created_at").notNull().defaultNow(),
  acknowledgedAt: tstz("acknowledged_at"),
  resolvedAt: tstz("resolved_at"),
  resolution: text("resolution"),
});

export const channels = pgTable("channels", {
  id: uuid("id").primaryKey(),
  tenant: text("tenant").notNull(),
  name: text("name").notNull(),
  kind: text("kind").notNull(),
  url: text("url").notNull(),
  secretEncrypted: text("secret_encrypted"),
  enabled: boolean("enabled").notNull().default(true),
  createdAt: tstz("created_at").notNull().defaultNow(),
});

export const outbox = pgTable("outbox", {
  id: uuid("id").primaryKey(),
  tenant: text("tenant").notNull(),
  alertId: uuid("alert_id").notNull(),
  channelId: uuid("channel_id"),
  kind: text("kind").notNull(),
  event: text("event").notNull(),
  payload: jsonb("payload").notNull().$type<Record<string, unknown>>(),
  status: text("status").notNull().default("pending"),
  attempts: integer("attempts").notNull().default(0),
  nextAttemptAt: tstz("next_attempt_at").notNull().defaultNow(),
  lockedUntil: tstz("locked_until"),
  lastError: text("last_error"),
  createdAt: tstz("created_at").notNull().defaultNow(),
  deliveredAt: tstz("delivered_at"),
});

export const deliveryAttempts = pgTable(
  "delivery_attempts",
  {
    deliveryId: uuid("delivery_id").notNull(),
    attempt: integer("attempt").notNull(),
    at: tstz("at").notNull().defaultNow(),
    statusCode: integer("status_code"),
    error: text("error"),
    durationMs: integer("duration_ms").notNull(),
  },
  (t) => [primaryKey({ name: "delivery_attempts_pkey", columns: [t.deliveryId, t.attempt] })],
);

export const tenants = pgTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  status: text("status").notNull().default("active").$type<"active" | "suspended">(),
  suspendedReason: text("suspended_reason"),
  devicePolicy: text("device_policy").notNull().default("auto").$type<"auto" | "reject">(),
  maxDevices: integer("max_devices"),
  ratePerSecond: doublePrecision("rate_per_second"),
  burst: integer("burst"),
  deviceRatePerSecond: doublePrecision("device_rate_per_second"),
  deviceBurst: integer("device_burst"),
  maxRecordsPerRequest: integer("max_records_per_request"),
  createdAt: tstz("created_at").notNull().defaultNow(),
  lineProtocol: jsonb("line_protocol"),
});

export const apiKeys = pgTable("api_keys", {
  id: uuid("id").primaryKey(),
  tenant: text("tenant").notNull(),
  prefix: text("prefix").notNull().unique("api_keys_prefix"),
  hash: text("hash").notNull(),
  name: text("name").notNull(),
  createdAt: tstz("created_at").notNull().defaultNow(),
  revokedAt: tstz("revoked_at"),
  lastUsedAt: tstz("last_used_at"),
  /** bcrypt of the key for nats-server's MQTT users; null for keys made before MQTT support. */
  mqttHash: text("mqtt_hash"),
  /** tenant, device (writes only `device`'s readings) or provision (only POST /api/v1/provision). */
  kind: text("kind").notNull().default("tenant"),
  device: text("device"),
});

export const deviceRegistrations = pgTable(
  "device_registrations",
  {
    tenant: text("tenant").notNull(),
    deviceId: text("device_id").notNull(),
    createdAt: tstz("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ name: "device_registrations_pkey", columns: [t.tenant, t.deviceId] })],
);

/** Message routes (migrations/0008_routes.sql, 0010_route_inflight.sql, decision 0610); queried with SQL in notify/route-*.ts. */
export const routes = pgTable("routes", {
  id: uuid("id").primaryKey(),
  tenant: text("tenant").notNull(),
  name: text("name").notNull(),
  state: text("state").notNull().default("active"),
  filter: jsonb("filter").notNull(),
  destination: jsonb("destination").notNull(),
  secretEncrypted: text("secret_encrypted"),
  consumedSeq: bigint("consumed_seq", { mode: "number" }).notNull().default(0),
  createdAt: tstz("created_at").notNull().defaultNow(),
  updatedAt: tstz("updated_at").notNull().defaultNow(),
  /** Added by 0010 (so last in the table): the take being sent, decision 0611. */
  inflightTo: bigint("inflight_to", { mode: "number" }),
});

export const routeBatches = pgTable("route_batches", {
  id: uuid("id").primaryKey(),
  n: bigint("n", { mode: "number" }).notNull().generatedAlwaysAsIdentity(),
  routeId: uuid("route_id").notNull(),
  firstSeq: bigint("first_seq", { mode: "number" }).notNull(),
  lastSeq: bigint("last_seq", { mode: "number" }).notNull(),
  readings: json("readings").notNull(),
  count: integer("count").notNull(),
  status: text("status").notNull().default("pending"),
  attempts: integer("attempts").notNull().default(0),
  nextAttemptAt: tstz("next_attempt_at").notNull().defaultNow(),
  lastError: text("last_error"),
  createdAt: tstz("created_at").notNull().defaultNow(),
  failedAt: tstz("failed_at"),
});

/** Evaluation partitions' fences (migrations/0009_evaluator_partitions.sql, decision 0550); queried with SQL in evaluator/fence.ts. */
export const evaluatorPartitions = pgTable("evaluator_partitions", {
  name: text("name").primaryKey(),
  epoch: bigint("epoch", { mode: "number" }).notNull().default(0),
  holder: text("holder"),
  lastSeq: bigint("last_seq", { mode: "number" }).notNull().default(0),
  claimedAt: tstz("claimed_at").notNull().defaultNow(),
});
