/**
 * Message routes, tenant-scoped (decision 0610): create, list, get, patch, delete, pause, resume,
 * the failed list and replay. A webhook's signing secret is shown once, in the create response
 * (generated when not given), stored encrypted like channel secrets and never returned again.
 * A route starts at the end of the telemetry stream: it forwards readings received after it was made.
 */
import { randomBytes } from "node:crypto";
import type { Context } from "hono";
import { v4 as uuidv4 } from "uuid";
import { z } from "zod";
import { publicDeliveryError } from "../core/delivery-error.ts";
import { destinationSchema, filterSchema, republishSubject, routeName, type RouteDestination } from "../core/routes.ts";
import { blockedMessage, checkUrlTarget, STRICT_POLICY, type TargetPolicy } from "../core/target-policy.ts";
import type { Sql } from "../db/client.ts";
import type { TenantEnv } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { limitParam, parseJson, parseQuery, uuidParam } from "../http/validate.ts";
import { err } from "../openapi/views.ts";
import { ROUTES_CHANGED_SUBJECT } from "./route-delivery.ts";
import { failedSchema, routeJson, routeSchema, type MessageRouteDeps } from "./route-views.ts";

export type { MessageRouteDeps } from "./route-views.ts";
export { routeJson } from "./route-views.ts";

export const routeCreate = z.strictObject({
  name: routeName,
  filter: filterSchema.default({}),
  destination: destinationSchema,
  state: z.enum(["active", "paused"]).default("active"),
});
export const routePatch = z.strictObject({
  filter: filterSchema.optional(),
  destination: destinationSchema.optional(),
});
const failedQuery = z.object({ limit: limitParam(500, 50) });
const replayBody = z.strictObject({ batch: z.uuid().optional() });

/** 422 for a destination outside the tenant's subjects or a webhook URL the target policy refuses. */
function checkDestination(tenant: string, name: string, d: RouteDestination, targets: TargetPolicy): void {
  if (d.type === "webhook") {
    const v = checkUrlTarget(targets, d.url);
    if (!v.ok)
      throw new HttpError(422, "blocked_address", blockedMessage(v), [
        { path: "destination.url", message: `${v.address} is ${v.kind.replace("_", "-")}` },
      ]);
    return;
  }
  const s = republishSubject(tenant, name, d);
  if ("error" in s)
    throw new HttpError(422, "invalid_body", "the request body is invalid", [
      { path: `destination.${d.type === "nats" ? "subject" : "topic"}`, message: s.error },
    ]);
}

async function find(c: Context<TenantEnv>, sql: Sql) {
  const [row] = await sql`SELECT * FROM routes WHERE tenant = ${c.get("tenant")} AND id = ${uuidParam(c)}`;
  if (!row) throw new HttpError(404, "not_found", "no such route");
  return row;
}

const changed = (deps: MessageRouteDeps) => deps.broker.nc.publish(ROUTES_CHANGED_SUBJECT, "");
const stored = (d: RouteDestination) => (d.type === "webhook" ? { type: d.type, url: d.url } : d);

const route = routesOf<MessageRouteDeps>();
const invalid = err(
  "invalid_body (details per field), or blocked_address: the webhook URL's host is an address the target policy refuses (as for channels)",
);
const one = { 200: ok("the route", routeSchema) };

async function setState(c: Context<TenantEnv>, deps: MessageRouteDeps, state: "active" | "paused") {
  const current = await find(c, deps.sql);
  const [row] = await deps.sql`
    UPDATE routes SET state = ${state}, updated_at = now() WHERE id = ${current.id} RETURNING *`;
  changed(deps);
  return c.json(await routeJson(row!, deps));
}

/** Creates a route at the end of the telemetry stream; the webhook secret is in the answer, only there. */
export async function insertRoute(deps: MessageRouteDeps, tenant: string, input: z.output<typeof routeCreate>) {
  checkDestination(tenant, input.name, input.destination, deps.targets ?? STRICT_POLICY);
  const secret =
    input.destination.type === "webhook" ? (input.destination.secret ?? randomBytes(32).toString("base64url")) : null;
  const start = (await deps.broker.jsm.streams.info(deps.stream)).state.last_seq;
  const rows = await deps.sql`
    INSERT INTO routes (id, tenant, name, state, filter, destination, secret_encrypted, consumed_seq)
    VALUES (${uuidv4()}, ${tenant}, ${input.name}, ${input.state}, ${deps.sql.json(input.filter as never)},
            ${deps.sql.json(stored(input.destination) as never)}, ${secret === null ? null : deps.secrets.encrypt(secret)}, ${start})
    ON CONFLICT (tenant, name) DO NOTHING RETURNING *`;
  if (!rows[0]) throw new HttpError(409, "conflict", `a route named ${input.name} exists`);
  changed(deps);
  return { ...(await routeJson(rows[0], deps)), ...(secret === null ? {} : { secret }) };
}

export const messageRoutes = [
  route({
    method: "post",
    path: "/api/v1/routes",
    tag: "routes",
    summary: "Create a message route (a webhook's secret is shown only in this response)",
    auth: "tenant",
    body: routeCreate,
    responses: {
      201: ok("created", routeSchema.extend({ secret: z.string().optional() })),
      409: err("name taken"),
      422: invalid,
    },
    handler: async function createRoute(c, deps) {
      const created = await insertRoute(deps, c.get("tenant"), await parseJson(routeCreate, c));
      return c.json(created, 201);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/routes",
    tag: "routes",
    summary: "List message routes with their lag",
    auth: "tenant",
    responses: { 200: ok("routes", z.object({ routes: z.array(routeSchema) })) },
    handler: async function listRoutes(c, deps) {
      const rows = await deps.sql`SELECT * FROM routes WHERE tenant = ${c.get("tenant")} ORDER BY name`;
      return c.json({ routes: await Promise.all(rows.map((r) => routeJson(r, deps))) });
    },
  }),
  route({
    method: "get",
    path: "/api/v1/routes/:id",
    tag: "routes",
    summary: "Get a message route",
    auth: "tenant",
    responses: one,
    handler: async (c, deps) => c.json(await routeJson(await find(c, deps.sql), deps)),
  }),
  route({
    method: "patch",
    path: "/api/v1/routes/:id",
    tag: "routes",
    summary:
      "Change a route's filter or destination (a new webhook secret, when given, replaces the old; a webhook that had none gets one, in this response only)",
    auth: "tenant",
    body: routePatch,
    responses: { 200: ok("the route", routeSchema.extend({ secret: z.string().optional() })), 422: invalid },
    handler: async function patchRoute(c, deps) {
      const current = await find(c, deps.sql);
      const patch = await parseJson(routePatch, c);
      const d = patch.destination;
      if (d) checkDestination(current.tenant, current.name, d, deps.targets ?? STRICT_POLICY);
      // A webhook is always signed: one that had no secret (it was NATS or MQTT) gets a new one, shown once.
      const fresh =
        d?.type === "webhook"
          ? (d.secret ?? (current.secret_encrypted ? null : randomBytes(32).toString("base64url")))
          : null;
      const secret =
        fresh !== null ? deps.secrets.encrypt(fresh) : d && d.type !== "webhook" ? null : current.secret_encrypted;
      const [row] = await deps.sql`
        UPDATE routes SET filter = ${deps.sql.json((patch.filter ?? current.filter) as never)},
               destination = ${deps.sql.json((d ? stored(d) : current.destination) as never)},
               secret_encrypted = ${secret}, updated_at = now()
        WHERE id = ${current.id} RETURNING *`;
      changed(deps);
      return c.json({
        ...(await routeJson(row!, deps)),
        ...(fresh !== null && d?.type === "webhook" && !d.secret ? { secret: fresh } : {}),
      });
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/routes/:id",
    tag: "routes",
    summary: "Delete a route (its pending and failed batches with it)",
    auth: "tenant",
    responses: { 204: ok("deleted") },
    handler: async function deleteRoute(c, deps) {
      const current = await find(c, deps.sql);
      await deps.sql`DELETE FROM routes WHERE id = ${current.id}`;
      changed(deps);
      return c.body(null, 204);
    },
  }),
  route({
    method: "post",
    path: "/api/v1/routes/:id/pause",
    tag: "routes",
    summary: "Pause a route: nothing is sent; readings wait in the stream (within its retention)",
    auth: "tenant",
    responses: one,
    handler: (c, deps) => setState(c, deps, "paused"),
  }),
  route({
    method: "post",
    path: "/api/v1/routes/:id/resume",
    tag: "routes",
    summary: "Resume a route from where it stopped",
    auth: "tenant",
    responses: one,
    handler: (c, deps) => setState(c, deps, "active"),
  }),
  route({
    method: "get",
    path: "/api/v1/routes/:id/failed",
    tag: "routes",
    summary: "A route's failed list: batches whose retry schedule ran out, newest first",
    auth: "tenant",
    query: failedQuery,
    responses: { 200: ok("failed batches", z.object({ failed: z.array(failedSchema) })) },
    handler: async function listFailed(c, deps) {
      const r = await find(c, deps.sql);
      const q = parseQuery(failedQuery, c);
      const rows = await deps.sql`
        SELECT id, count, attempts, last_error, created_at, failed_at, readings -> 0 AS first_reading
        FROM route_batches WHERE route_id = ${r.id} AND status = 'failed' ORDER BY n DESC LIMIT ${q.limit}`;
      return c.json({
        failed: rows.map((b) => ({
          id: b.id,
          readings: b.count,
          attempts: b.attempts,
          last_error: publicDeliveryError(b.last_error),
          created_at: (b.created_at as Date).toISOString(),
          failed_at: b.failed_at ? (b.failed_at as Date).toISOString() : null,
          first_reading: b.first_reading ?? null,
        })),
      });
    },
  }),
  route({
    method: "post",
    path: "/api/v1/routes/:id/replay",
    tag: "routes",
    summary: 'Send failed batches again (all, or one: {"batch": id}); each keeps its delivery id',
    auth: "tenant",
    body: replayBody,
    responses: { 200: ok("how many batches are pending again", z.object({ replayed: z.number() })) },
    handler: async function replayFailed(c, deps) {
      const r = await find(c, deps.sql);
      const input = await parseJson(replayBody, c);
      const rows = await deps.sql`
        UPDATE route_batches SET status = 'pending', attempts = 0, next_attempt_at = now(), failed_at = NULL
        WHERE route_id = ${r.id} AND status = 'failed' ${input.batch ? deps.sql`AND id = ${input.batch}` : deps.sql``}
        RETURNING id`;
      return c.json({ replayed: rows.length });
    },
  }),
];
