/**
 * Notification channels, tenant-scoped: create, list, get, patch, delete, and a channel's
 * deliveries with their attempts. A channel's secret is shown once, in the create response (for a
 * webhook without one, a generated signing secret); it is stored encrypted and never returned again.
 */
import { randomBytes } from "node:crypto";
import type { Context } from "hono";
import { v4 as uuidv4 } from "uuid";
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import type { TenantEnv } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { issuesOf, limitParam, parseJson, parseQuery, uuidParam } from "../http/validate.ts";
import type { SecretBox } from "./secrets.ts";
import { channelSchema, deliverySchema, err } from "../openapi/views.ts";
import { publicDeliveryError } from "../core/delivery-error.ts";
import { blockedMessage, checkUrlTarget, STRICT_POLICY, type TargetPolicy } from "../core/target-policy.ts";

const name = z.string().trim().min(1).max(128);
const url = z.url({ protocol: /^https?$/, error: "must be an http or https URL" }).max(2048);
/** A webhook secret signs payloads, so it must be hard to guess; a hub API key is what the hub issued. */
const secretFor = {
  webhook: z.string().min(16, "must be at least 16 characters").max(1024),
  hub: z.string().min(1).max(1024),
} as const;

export const createBody = z.discriminatedUnion("kind", [
  z.strictObject({
    name,
    kind: z.literal("webhook"),
    url,
    secret: secretFor.webhook.optional(),
    enabled: z.boolean().default(true),
  }),
  z.strictObject({ name, kind: z.literal("hub"), url, secret: secretFor.hub, enabled: z.boolean().default(true) }),
]);

export const patchBody = z.strictObject({
  name: name.optional(),
  url: url.optional(),
  enabled: z.boolean().optional(),
  secret: z.string().optional(),
});

export const deliveriesQuery = z.object({
  limit: limitParam(500, 50),
  status: z.enum(["pending", "delivered", "failed"]).optional(),
});

export function channelJson(c: Record<string, any>): z.output<typeof channelSchema> {
  return {
    id: c.id,
    name: c.name,
    kind: c.kind,
    url: c.url,
    enabled: c.enabled,
    has_secret: c.secret_encrypted !== null,
    created_at: (c.created_at as Date).toISOString(),
  };
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** 422 blocked_address for a URL whose host is an address the policy refuses (any IP spelling). */
function requireAllowedTarget(targets: TargetPolicy, url: string): void {
  const v = checkUrlTarget(targets, url);
  if (!v.ok)
    throw new HttpError(422, "blocked_address", blockedMessage(v), [
      { path: "url", message: `${v.address} is ${v.kind.replace("_", "-")}` },
    ]);
}

export interface ChannelDeps {
  sql: Sql;
  secrets: SecretBox;
  /** Which webhook targets are allowed (TELEMETRY_WEBHOOK_ALLOW); strict when not given. */
  targets?: TargetPolicy;
}

const route = routesOf<ChannelDeps>();

const blockedTarget = err(
  "invalid_body (details per field), or blocked_address: the URL's host is a loopback, private, link-local, CGNAT, multicast, unspecified, broadcast, documentation or reserved address, in any spelling (e.g. 2130706433, 0x7f.1, [::ffff:127.0.0.1]); the operator can allow targets with TELEMETRY_WEBHOOK_ALLOW. A host name is checked on the addresses it resolves to when delivering.",
);

async function find(c: Context<TenantEnv>, sql: Sql) {
  const [row] = await sql`SELECT * FROM channels WHERE tenant = ${c.get("tenant")} AND id = ${uuidParam(c)}`;
  if (!row) throw new HttpError(404, "not_found", "no such channel");
  return row;
}

export const channelRoutes = [
  route({
    method: "post",
    path: "/api/v1/channels",
    tag: "channels",
    summary: "Create a notification channel (the secret is shown only in this response)",
    auth: "tenant",
    body: createBody,
    responses: {
      201: ok("created; `secret` is never returned again", channelSchema.extend({ secret: z.string() })),
      422: blockedTarget,
    },
    handler: async function createChannel(c, { sql, secrets, targets }) {
      const input = await parseJson(createBody, c);
      requireAllowedTarget(targets ?? STRICT_POLICY, input.url);
      const secret = input.secret ?? randomBytes(32).toString("base64url");
      const [row] = await sql`
        INSERT INTO channels (id, tenant, name, kind, url, secret_encrypted, enabled)
        VALUES (${uuidv4()}, ${c.get("tenant")}, ${input.name}, ${input.kind}, ${input.url}, ${secrets.encrypt(secret)}, ${input.enabled})
        RETURNING *`;
      return c.json({ ...channelJson(row!), secret }, 201);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/channels",
    tag: "channels",
    summary: "List channels",
    auth: "tenant",
    responses: { 200: ok("channels", z.object({ channels: z.array(channelSchema) })) },
    handler: async function listChannels(c, { sql }) {
      const rows = await sql`SELECT * FROM channels WHERE tenant = ${c.get("tenant")} ORDER BY created_at, id`;
      return c.json({ channels: rows.map(channelJson) });
    },
  }),
  route({
    method: "get",
    path: "/api/v1/channels/:id",
    tag: "channels",
    summary: "Get a channel",
    auth: "tenant",
    responses: { 200: ok("the channel", channelSchema) },
    handler: async function getChannel(c, { sql }) {
      return c.json(channelJson(await find(c, sql)));
    },
  }),
  route({
    method: "patch",
    path: "/api/v1/channels/:id",
    tag: "channels",
    summary: "Change a channel (name, url, enabled, secret)",
    auth: "tenant",
    body: patchBody,
    responses: { 200: ok("the channel", channelSchema), 422: blockedTarget },
    handler: async function patchChannel(c, { sql, secrets, targets }) {
      const current = await find(c, sql);
      const patch = await parseJson(patchBody, c);
      if (patch.secret !== undefined) {
        const r = secretFor[current.kind as keyof typeof secretFor].safeParse(patch.secret);
        if (!r.success)
          throw new HttpError(
            422,
            "invalid_body",
            "the request body is invalid",
            issuesOf(r.error).map((i) => ({ ...i, path: "secret" })),
          );
      }
      if (patch.url !== undefined) requireAllowedTarget(targets ?? STRICT_POLICY, patch.url);
      const [row] = await sql`
        UPDATE channels SET
          name = ${patch.name ?? current.name},
          url = ${patch.url ?? current.url},
          enabled = ${patch.enabled ?? current.enabled},
          secret_encrypted = ${patch.secret === undefined ? current.secret_encrypted : secrets.encrypt(patch.secret)}
        WHERE id = ${current.id}
        RETURNING *`;
      return c.json(channelJson(row!));
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/channels/:id",
    tag: "channels",
    summary: "Delete a channel",
    auth: "tenant",
    responses: { 204: ok("deleted") },
    handler: async function deleteChannel(c, { sql }) {
      const current = await find(c, sql);
      await sql`DELETE FROM channels WHERE id = ${current.id}`;
      return c.body(null, 204);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/channels/:id/deliveries",
    tag: "channels",
    summary: "A channel's deliveries with their attempts",
    auth: "tenant",
    query: deliveriesQuery,
    responses: { 200: ok("deliveries, newest first", z.object({ deliveries: z.array(deliverySchema) })) },
    handler: async function listDeliveries(c, { sql }) {
      const channel = await find(c, sql);
      const q = parseQuery(deliveriesQuery, c);
      const rows = await sql`
        SELECT id, alert_id, event, status, attempts, next_attempt_at, last_error, created_at, delivered_at
        FROM outbox
        WHERE channel_id = ${channel.id} ${q.status ? sql`AND status = ${q.status}` : sql``}
        ORDER BY created_at DESC, id DESC
        LIMIT ${q.limit}`;
      const attempts = rows.length
        ? await sql`
            SELECT delivery_id, attempt, at, status_code, error, duration_ms FROM delivery_attempts
            WHERE delivery_id = ANY(${rows.map((r) => r.id as string)}::uuid[])
            ORDER BY delivery_id, attempt`
        : [];
      const byDelivery = Map.groupBy(attempts, (a) => a.delivery_id as string);
      return c.json({
        deliveries: rows.map((r) => ({
          id: r.id,
          alert_id: r.alert_id,
          event: r.event,
          status: r.status,
          attempts: r.attempts,
          next_attempt_at: r.status === "pending" ? iso(r.next_attempt_at) : null,
          last_error: publicDeliveryError(r.last_error),
          created_at: iso(r.created_at),
          delivered_at: iso(r.delivered_at),
          attempt_log: (byDelivery.get(r.id) ?? []).map((a) => ({
            attempt: a.attempt,
            at: iso(a.at),
            status_code: a.status_code,
            error: publicDeliveryError(a.error),
            duration_ms: a.duration_ms,
          })),
        })),
      });
    },
  }),
];
