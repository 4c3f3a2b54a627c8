/**
 * Admin API, behind TELEMETRY_ADMIN_TOKEN: tenants (create, list, get, patch: suspend with a
 * reason, resume, device policy, limits) and their keys (create, shown once; list; revoke).
 * Changes made here reach this process's key cache at once, other processes within its TTL.
 */
import { Hono, type Context } from "hono";
import type { Sql } from "../db/client.ts";
import { requireAdmin } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";
import { parseJson } from "../http/validate.ts";
import type { KeyCache } from "./cache.ts";
import { createKey, createTenant, getTenant, keyJson, listKeys, listTenants, revokeKey, updateTenant } from "./store.ts";
import type { TenantLimits } from "../core/tenant.ts";
import { keyCreate, tenantCreate, tenantJson, tenantPatch } from "./tenant.ts";

export interface AdminDeps {
  sql: Sql;
  token: string;
  cache: KeyCache;
  defaults: TenantLimits;
}

export function adminRoutes({ sql, token, cache, defaults }: AdminDeps) {
  const app = new Hono();
  app.use("/admin/v1/*", requireAdmin(token));

  const tenantOf = async (c: Context) => {
    const row = await getTenant(sql, c.req.param("id")!);
    if (!row) throw new HttpError(404, "not_found", "no such tenant");
    return row;
  };

  app.post("/admin/v1/tenants", async function createTenantRoute(c) {
    const input = await parseJson(tenantCreate, c);
    const row = await createTenant(sql, input);
    if (!row) throw new HttpError(409, "conflict", `tenant ${input.id} exists`);
    return c.json(tenantJson(row, defaults), 201);
  });

  app.get("/admin/v1/tenants", async function listTenantsRoute(c) {
    return c.json({ tenants: (await listTenants(sql)).map((t) => tenantJson(t, defaults)) });
  });

  app.get("/admin/v1/tenants/:id", async function getTenantRoute(c) {
    return c.json(tenantJson(await tenantOf(c), defaults));
  });

  app.patch("/admin/v1/tenants/:id", async function patchTenantRoute(c) {
    const current = await tenantOf(c);
    const row = await updateTenant(sql, current.id, await parseJson(tenantPatch, c));
    cache.invalidateTenant(current.id);
    return c.json(tenantJson(row!, defaults));
  });

  app.post("/admin/v1/tenants/:id/keys", async function createKeyRoute(c) {
    const tenant = await tenantOf(c);
    const { name } = await parseJson(keyCreate, c);
    const created = await createKey(sql, tenant.id, name);
    if (!created) throw new HttpError(404, "not_found", "no such tenant");
    return c.json({ ...keyJson(created.row), key: created.key }, 201);
  });

  app.get("/admin/v1/tenants/:id/keys", async function listKeysRoute(c) {
    const tenant = await tenantOf(c);
    return c.json({ keys: (await listKeys(sql, tenant.id)).map(keyJson) });
  });

  app.post("/admin/v1/tenants/:id/keys/:key/revoke", async function revokeKeyRoute(c) {
    const tenant = await tenantOf(c);
    const row = await revokeKey(sql, c.req.param("key"), tenant.id);
    if (!row) throw new HttpError(404, "not_found", "no such key");
    cache.invalidateKey(row.id);
    return c.json(keyJson(row));
  });
  return app;
}
