/**
 * Admin API, behind TELEMETRY_ADMIN_TOKEN: tenants (create, list, get, patch: suspend with a
 * reason, resume, device policy, limits) and their keys (create, shown once; list; revoke).
 * Changes made here reach this process's key cache at once, other processes within its TTL.
 */
import type { Context } from "hono";
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { parseJson } from "../http/validate.ts";
import { err } from "../openapi/views.ts";
import type { KeyCache } from "./cache.ts";
import {
  createKey,
  createTenant,
  getTenant,
  keyJson,
  listKeys,
  listTenants,
  revokeKey,
  scopeOf,
  updateTenant,
} from "./store.ts";
import type { TenantLimits } from "../core/tenant.ts";
import { keySchema, tenantSchema } from "./views.ts";
import { keyCreate, tenantCreate, tenantJson, tenantPatch } from "./tenant.ts";

export interface AdminDeps {
  sql: Sql;
  cache: KeyCache;
  defaults: TenantLimits;
}

const route = routesOf<AdminDeps>();

async function tenantOf(c: Context, sql: Sql) {
  const row = await getTenant(sql, c.req.param("id")!);
  if (!row) throw new HttpError(404, "not_found", "no such tenant");
  return row;
}

export const adminRoutes = [
  route({
    method: "post",
    path: "/admin/v1/tenants",
    tag: "admin",
    summary: "Create a tenant",
    auth: "admin",
    body: tenantCreate,
    responses: { 201: ok("created", tenantSchema), 409: err("conflict: the id exists") },
    handler: async function createTenantRoute(c, { sql, defaults }) {
      const input = await parseJson(tenantCreate, c);
      const row = await createTenant(sql, input);
      if (!row) throw new HttpError(409, "conflict", `tenant ${input.id} exists`);
      return c.json(tenantJson(row, defaults), 201);
    },
  }),
  route({
    method: "get",
    path: "/admin/v1/tenants",
    tag: "admin",
    summary: "List tenants",
    auth: "admin",
    responses: { 200: ok("tenants", z.object({ tenants: z.array(tenantSchema) })) },
    handler: async function listTenantsRoute(c, { sql, defaults }) {
      return c.json({ tenants: (await listTenants(sql)).map((t) => tenantJson(t, defaults)) });
    },
  }),
  route({
    method: "get",
    path: "/admin/v1/tenants/:id",
    tag: "admin",
    summary: "Get a tenant",
    auth: "admin",
    responses: { 200: ok("the tenant", tenantSchema) },
    handler: async function getTenantRoute(c, { sql, defaults }) {
      return c.json(tenantJson(await tenantOf(c, sql), defaults));
    },
  }),
  route({
    method: "patch",
    path: "/admin/v1/tenants/:id",
    tag: "admin",
    summary: "Suspend, resume, rename, set the device policy or limits",
    auth: "admin",
    body: tenantPatch,
    responses: { 200: ok("the tenant", tenantSchema) },
    handler: async function patchTenantRoute(c, { sql, cache, defaults }) {
      const current = await tenantOf(c, sql);
      const row = await updateTenant(sql, current.id, await parseJson(tenantPatch, c));
      cache.invalidateTenant(current.id);
      return c.json(tenantJson(row!, defaults));
    },
  }),
  route({
    method: "post",
    path: "/admin/v1/tenants/:id/keys",
    tag: "admin",
    summary: "Create an API key (shown only in this response): a tenant key, a device key or a provisioning token",
    auth: "admin",
    body: keyCreate,
    responses: { 201: ok("the key's row and `key`, the only time it is shown", keySchema.extend({ key: z.string() })) },
    handler: async function createKeyRoute(c, { sql }) {
      const tenant = await tenantOf(c, sql);
      const input = await parseJson(keyCreate, c);
      const created = await createKey(sql, tenant.id, input.name, scopeOf(input));
      if (!created) throw new HttpError(404, "not_found", "no such tenant");
      return c.json({ ...keyJson(created.row), key: created.key }, 201);
    },
  }),
  route({
    method: "get",
    path: "/admin/v1/tenants/:id/keys",
    tag: "admin",
    summary: "List a tenant's keys (never the key or its hash)",
    auth: "admin",
    responses: { 200: ok("keys", z.object({ keys: z.array(keySchema) })) },
    handler: async function listKeysRoute(c, { sql }) {
      const tenant = await tenantOf(c, sql);
      return c.json({ keys: (await listKeys(sql, tenant.id)).map(keyJson) });
    },
  }),
  route({
    method: "post",
    path: "/admin/v1/tenants/:id/keys/:key/revoke",
    tag: "admin",
    summary: "Revoke a key (by id or prefix)",
    auth: "admin",
    params: { key: "the key's id or prefix" },
    responses: { 200: ok("the revoked key", keySchema) },
    handler: async function revokeKeyRoute(c, { sql, cache }) {
      const tenant = await tenantOf(c, sql);
      const row = await revokeKey(sql, c.req.param("key"), tenant.id);
      if (!row) throw new HttpError(404, "not_found", "no such key");
      cache.invalidateKey(row.id);
      return c.json(keyJson(row));
    },
  }),
];
