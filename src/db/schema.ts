/**
 * Drizzle table definitions for typed queries. The SQL in migrations/ is the source of truth for
 * the database; a test checks that these definitions match the migrated tables column by column.
 */
import { bigint, bigserial, doublePrecision, jsonb, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

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
