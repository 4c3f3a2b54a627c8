/**
 * What the message-route API answers (decision 0610): a route as JSON (its destination without the
 * secret, its lag and batch counts) and a failed batch.
 */
import { z } from "zod";
import { republishSubject, type RouteDestination } from "../core/routes.ts";
import { tenantFilter } from "../core/subject.ts";
import type { TargetPolicy } from "../core/target-policy.ts";
import type { Sql } from "../db/client.ts";
import type { Broker } from "../nats/connection.ts";
import { pendingAfter } from "../nats/pending.ts";
import type { SecretBox } from "./secrets.ts";

/** A `routes` row as postgres.js returns it. */
// biome-ignore lint/suspicious/noExplicitAny: a database row
type RouteRow = Record<string, any>;

export interface MessageRouteDeps {
  sql: Sql;
  secrets: SecretBox;
  broker: Broker;
  /** The telemetry stream (TELEMETRY_STREAM). */
  stream: string;
  targets?: TargetPolicy;
}

const destinationView = z.union([
  z.object({ type: z.literal("webhook"), url: z.string(), has_secret: z.boolean() }),
  z.object({ type: z.enum(["nats", "mqtt"]), subject: z.string() }),
]);
export const routeSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    state: z.enum(["active", "paused"]),
    filter: z.record(z.string(), z.unknown()),
    destination: destinationView,
    lag: z
      .number()
      .nullable()
      .meta({ description: "telemetry-stream messages of the tenant not yet taken; null when unknown" }),
    pending_batches: z.number(),
    failed_batches: z.number(),
    created_at: z.string(),
  })
  .meta({ id: "MessageRoute" });
export const failedSchema = z.object({
  id: z.uuid().meta({ description: "the delivery id (X-Telemetry-Delivery)" }),
  readings: z.number(),
  attempts: z.number(),
  last_error: z.string().nullable(),
  created_at: z.string(),
  failed_at: z.string().nullable(),
  first_reading: z.record(z.string(), z.unknown()).nullable(),
});

function destinationJson(r: RouteRow) {
  const d = r.destination as RouteDestination;
  if (d.type === "webhook") return { type: d.type, url: d.url, has_secret: r.secret_encrypted !== null };
  const s = republishSubject(r.tenant, r.name, d);
  return {
    type: d.type,
    subject: "subject" in s ? (d.type === "mqtt" ? s.subject.replaceAll(".", "/") : s.subject) : "",
  };
}

export async function routeJson(r: RouteRow, deps: MessageRouteDeps): Promise<z.output<typeof routeSchema>> {
  const [counts] = await deps.sql`
    SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE status = 'failed')::int AS failed
    FROM route_batches WHERE route_id = ${r.id}`;
  const lag = await pendingAfter(deps.broker.jsm, deps.stream, tenantFilter(r.tenant), Number(r.consumed_seq)).catch(
    () => null,
  );
  return {
    id: r.id,
    name: r.name,
    state: r.state,
    filter: r.filter,
    destination: destinationJson(r),
    lag,
    pending_batches: counts?.pending ?? 0,
    failed_batches: counts?.failed ?? 0,
    created_at: (r.created_at as Date).toISOString(),
  };
}
