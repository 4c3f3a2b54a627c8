/**
 * Every HTTP route, with the zod schemas its handler validates with (query, body) and the ones
 * its responses are typed by (views.ts). integration/openapi checks that this list and the
 * server's router hold exactly the same routes.
 */
import { z } from "zod";
import { listQuery as alertListQuery } from "../api/alerts.ts";
import { registerBody } from "../api/device-admin.ts";
import { bucketList, bucketQuery, devicePage, listQuery as deviceListQuery, readingList, readingsQuery } from "../api/devices.ts";
import { listQuery as ruleListQuery } from "../api/rules.ts";
import { recordSchema } from "../core/record.ts";
import { ruleInputSchema } from "../core/rules/schema.ts";
import { createBody as channelCreate, deliveriesQuery, patchBody as channelPatch } from "../notify/routes.ts";
import { keyCreate, tenantCreate, tenantPatch } from "../tenants/tenant.ts";
import { devicesResponse, latestQuery, latestResponse, statsResponse } from "../ui/api.ts";
import type { Operation } from "./document.ts";
import { alertSchema, channelSchema, deliverySchema, errorSchema, ingestResultSchema, keySchema, ruleSchema, tenantSchema, deviceSchema } from "./views.ts";

const ok = (description: string, schema?: z.ZodType) => ({ description, ...(schema ? { schema } : {}) });
const err = (description: string) => ({ description, schema: errorSchema });
const retryAfter = { "Retry-After": "seconds to wait before retrying" };
const page = (description: string, content = "text/html") => ({ 200: { description, contentType: content } });
const blockedTarget = err(
  "invalid_body (details per field), or blocked_address: the URL's host is a loopback, private, link-local, CGNAT, multicast, unspecified, broadcast, documentation or reserved address, in any spelling (e.g. 2130706433, 0x7f.1, [::ffff:127.0.0.1]); the operator can allow targets with TELEMETRY_WEBHOOK_ALLOW. A host name is checked on the addresses it resolves to when delivering.",
);

const record = recordSchema.meta({ id: "TelemetryRecord", description: "One reading. Unknown fields are rejected." });
const ruleInput = ruleInputSchema.meta({ id: "RuleInput" });

const tenantOps: Operation[] = [
  { method: "get", path: "/api/v1/devices", tag: "devices", summary: "List devices (by id, paged)", security: "tenant", query: deviceListQuery, responses: { 200: ok("a page of devices", devicePage) } },
  { method: "post", path: "/api/v1/devices", tag: "devices", summary: "Register a device ahead of its first reading", description: "Needed under device_policy reject; counts toward max_devices.", security: "tenant", body: registerBody, responses: { 201: ok("registered", z.object({ device_id: z.string(), registered: z.literal(true) })), 200: ok("already known", z.object({ device_id: z.string(), registered: z.literal(true) })), 403: err("device_limit: the tenant's device cap is reached, or the tenant is suspended") } },
  { method: "get", path: "/api/v1/devices/:id", tag: "devices", summary: "Get a device (last seen, last location)", security: "tenant", responses: { 200: ok("the device", deviceSchema) } },
  { method: "delete", path: "/api/v1/devices/:id", tag: "devices", summary: "Remove a device from the registry (its readings stay until retention)", security: "tenant", responses: { 204: ok("removed") } },
  { method: "get", path: "/api/v1/devices/:id/readings", tag: "devices", summary: "Raw readings of a device", security: "tenant", query: readingsQuery, responses: { 200: ok("readings, newest first unless order=asc", readingList) } },
  { method: "get", path: "/api/v1/devices/:id/metrics/:metric", tag: "devices", summary: "A metric in time buckets, from the 1-minute rollups", security: "tenant", query: bucketQuery, responses: { 200: ok("count, mean, min, max and stddev per bucket", bucketList) } },

  { method: "post", path: "/api/v1/rules", tag: "rules", summary: "Create an alert rule", security: "tenant", body: ruleInput, responses: { 201: ok("created", ruleSchema) } },
  { method: "get", path: "/api/v1/rules", tag: "rules", summary: "List rules", security: "tenant", query: ruleListQuery, responses: { 200: ok("rules, oldest first", z.object({ rules: z.array(ruleSchema) })) } },
  { method: "get", path: "/api/v1/rules/:id", tag: "rules", summary: "Get a rule", security: "tenant", responses: { 200: ok("the rule", ruleSchema) } },
  { method: "put", path: "/api/v1/rules/:id", tag: "rules", summary: "Replace a rule (a changed condition, metric or devices starts its state afresh)", security: "tenant", body: ruleInput, responses: { 200: ok("the rule", ruleSchema) } },
  { method: "patch", path: "/api/v1/rules/:id", tag: "rules", summary: "Change some fields of a rule (merged, then validated as a whole)", security: "tenant", body: z.record(z.string(), z.unknown()).meta({ description: "any fields of RuleInput" }), responses: { 200: ok("the rule", ruleSchema) } },
  { method: "post", path: "/api/v1/rules/:id/enable", tag: "rules", summary: "Enable a rule", security: "tenant", responses: { 200: ok("the rule", ruleSchema) } },
  { method: "post", path: "/api/v1/rules/:id/disable", tag: "rules", summary: "Disable a rule", security: "tenant", responses: { 200: ok("the rule", ruleSchema) } },
  { method: "delete", path: "/api/v1/rules/:id", tag: "rules", summary: "Delete a rule", security: "tenant", responses: { 204: ok("deleted") } },

  { method: "get", path: "/api/v1/alerts", tag: "alerts", summary: "List alerts, newest first (filters, cursor pages)", security: "tenant", query: alertListQuery, responses: { 200: ok("a page of alerts", z.object({ alerts: z.array(alertSchema), next_cursor: z.string().nullable() })) } },
  { method: "get", path: "/api/v1/alerts/:id", tag: "alerts", summary: "Get an alert", security: "tenant", responses: { 200: ok("the alert", alertSchema) } },
  { method: "post", path: "/api/v1/alerts/:id/acknowledge", tag: "alerts", summary: "Acknowledge an alert (idempotent)", security: "tenant", responses: { 200: ok("the alert", alertSchema), 409: err("alert_resolved: already resolved") } },
  { method: "post", path: "/api/v1/alerts/:id/resolve", tag: "alerts", summary: "Resolve an alert (idempotent)", security: "tenant", responses: { 200: ok("the alert", alertSchema) } },

  { method: "post", path: "/api/v1/channels", tag: "channels", summary: "Create a notification channel (the secret is shown only in this response)", security: "tenant", body: channelCreate, responses: { 201: ok("created; `secret` is never returned again", channelSchema.extend({ secret: z.string() })), 422: blockedTarget } },
  { method: "get", path: "/api/v1/channels", tag: "channels", summary: "List channels", security: "tenant", responses: { 200: ok("channels", z.object({ channels: z.array(channelSchema) })) } },
  { method: "get", path: "/api/v1/channels/:id", tag: "channels", summary: "Get a channel", security: "tenant", responses: { 200: ok("the channel", channelSchema) } },
  { method: "patch", path: "/api/v1/channels/:id", tag: "channels", summary: "Change a channel (name, url, enabled, secret)", security: "tenant", body: channelPatch, responses: { 200: ok("the channel", channelSchema), 422: blockedTarget } },
  { method: "delete", path: "/api/v1/channels/:id", tag: "channels", summary: "Delete a channel", security: "tenant", responses: { 204: ok("deleted") } },
  { method: "get", path: "/api/v1/channels/:id/deliveries", tag: "channels", summary: "A channel's deliveries with their attempts", security: "tenant", query: deliveriesQuery, responses: { 200: ok("deliveries, newest first", z.object({ deliveries: z.array(deliverySchema) })) } },

  { method: "get", path: "/api/v1/dashboard/stats", tag: "dashboard", summary: "The dashboard's counts and server charts", description: "Rates are this process's (all tenants); consumer lag is server-wide. Sampling starts with the first request and stops after 10 idle minutes.", security: "tenant", responses: { 200: ok("counts and the last minutes' points", statsResponse) } },
  { method: "get", path: "/api/v1/dashboard/devices", tag: "dashboard", summary: "Every device of the tenant, compact (for the list and the position plot)", security: "tenant", responses: { 200: ok("one row per device", devicesResponse) } },
  { method: "get", path: "/api/v1/dashboard/latest", tag: "dashboard", summary: "The latest reading with metrics of each named device", security: "tenant", query: latestQuery, responses: { 200: ok("by device id; devices without readings are left out", latestResponse) } },
];

const ingestOp: Operation = {
  method: "post",
  path: "/api/v1/telemetry",
  tag: "ingest",
  summary: "Send readings (one record, an array, or NDJSON)",
  description:
    "The key decides the tenant. 202 once JetStream has acknowledged at least one record; each record gets a result in request order. The body may be sent with Content-Encoding gzip or deflate; TELEMETRY_MAX_BODY holds before and after decoding. Checks in order: key, content type and encoding, body size, decoding, parsing, each record, device policy, rate limits, publish.",
  security: "tenant",
  body: {
    "application/json": z.union([record, z.array(record)]),
    "application/x-ndjson": z.string().meta({ description: "one record per line; a bad line rejects only that record" }),
  },
  responses: {
    202: ok("at least one record accepted", ingestResultSchema),
    422: ok("every record was invalid or refused (same body as 202)", ingestResultSchema),
    403: { ...err("tenant_suspended, or unknown_device / device_limit for every record") },
    400: err("invalid_json, empty_body, invalid_body (not a record or an array), invalid_utf8, invalid_encoding (corrupt gzip/deflate)"),
    413: err("body_too_large (as sent or once decoded) or too_many_records"),
    415: { ...err("unsupported_media_type (Content-Type) or unsupported_encoding (Content-Encoding other than gzip, deflate, identity)"), headers: { "Accept-Encoding": "the supported content codings (on unsupported_encoding)" } },
    429: { ...err("rate_limited, or auth_rate_limited (too many failed key checks from this address)"), headers: retryAfter },
    503: { ...err("broker_unavailable (nothing stored: retry the same records), auth_unavailable, auth_busy, devices_unavailable"), headers: retryAfter },
  },
};

const adminOps: Operation[] = [
  { method: "post", path: "/admin/v1/tenants", tag: "admin", summary: "Create a tenant", security: "admin", body: tenantCreate, responses: { 201: ok("created", tenantSchema), 409: err("conflict: the id exists") } },
  { method: "get", path: "/admin/v1/tenants", tag: "admin", summary: "List tenants", security: "admin", responses: { 200: ok("tenants", z.object({ tenants: z.array(tenantSchema) })) } },
  { method: "get", path: "/admin/v1/tenants/:id", tag: "admin", summary: "Get a tenant", security: "admin", responses: { 200: ok("the tenant", tenantSchema) } },
  { method: "patch", path: "/admin/v1/tenants/:id", tag: "admin", summary: "Suspend, resume, rename, set the device policy or limits", security: "admin", body: tenantPatch, responses: { 200: ok("the tenant", tenantSchema) } },
  { method: "post", path: "/admin/v1/tenants/:id/keys", tag: "admin", summary: "Create an API key (shown only in this response)", security: "admin", body: keyCreate, responses: { 201: ok("the key's row and `key`, the only time it is shown", keySchema.extend({ key: z.string() })) } },
  { method: "get", path: "/admin/v1/tenants/:id/keys", tag: "admin", summary: "List a tenant's keys (never the key or its hash)", security: "admin", responses: { 200: ok("keys", z.object({ keys: z.array(keySchema) })) } },
  { method: "post", path: "/admin/v1/tenants/:id/keys/:key/revoke", tag: "admin", summary: "Revoke a key (by id or prefix)", security: "admin", params: { key: "the key's id or prefix" }, responses: { 200: ok("the revoked key", keySchema) } },
];

const serviceOps: Operation[] = [
  { method: "get", path: "/health", tag: "service", summary: "Liveness: the process answers", security: "none", responses: { 200: ok("alive", z.object({ status: z.literal("ok") })) } },
  { method: "get", path: "/ready", tag: "service", summary: "Readiness: NATS (and, for writer/evaluator/api, the database) answer", security: "none", responses: { 200: ok("ready", readySchema()), 503: ok("not ready, or shutting down", readySchema()) } },
  { method: "get", path: "/metrics", tag: "service", summary: "Prometheus metrics of this process", security: "none", responses: page("Prometheus text format", "text/plain") },
  { method: "get", path: "/openapi.json", tag: "service", summary: "This description (OpenAPI 3.1)", security: "none", responses: page("the OpenAPI document", "application/json") },
  { method: "get", path: "/docs", tag: "service", summary: "API documentation page (Swagger UI over /openapi.json)", security: "none", responses: page("HTML") },
  { method: "get", path: "/docs/assets/:name", tag: "service", summary: "Files of the documentation page", security: "none", responses: { ...page("JavaScript or CSS", "text/javascript"), 404: err("no such file") } },
  { method: "get", path: "/", tag: "dashboard", summary: "Redirects to the dashboard", security: "none", responses: { 302: ok("to /ui/") } },
  { method: "get", path: "/ui", tag: "dashboard", summary: "Redirects to the dashboard", security: "none", responses: { 302: ok("to /ui/") } },
  { method: "get", path: "/ui/", tag: "dashboard", summary: "The dashboard (sign in with a tenant key)", security: "none", responses: page("HTML") },
  { method: "get", path: "/ui/assets/:name", tag: "dashboard", summary: "Files of the dashboard", security: "none", responses: { ...page("JavaScript or CSS", "text/javascript"), 404: err("no such file") } },
];

function readySchema() {
  return z.object({ ready: z.boolean(), shutting_down: z.boolean(), checks: z.record(z.string(), z.boolean()) });
}

export const OPERATIONS: readonly Operation[] = [ingestOp, ...tenantOps, ...adminOps, ...serviceOps];
