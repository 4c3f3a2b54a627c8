/**
 * Device keys through the tenant API (a tenant key): create (the key is in that response only),
 * list and revoke the keys of one device; and the provisioning exchange, POST /api/v1/provision,
 * which takes a provisioning token only (mounted behind its own auth, see server/start.ts).
 */
import type { Context } from "hono";
import { z } from "zod";
import { deviceIdProblem } from "../core/record.ts";
import type { Sql } from "../db/client.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { parseJson } from "../http/validate.ts";
import { err } from "../openapi/views.ts";
import type { KeyCache } from "../tenants/cache.ts";
import type { DeviceRegistry } from "../tenants/devices.ts";
import { provisionDevice } from "../tenants/provision.ts";
import { createKey, keyJson, listKeys, revokeKey } from "../tenants/store.ts";
import { deviceId, deviceKeyCreate } from "../tenants/tenant.ts";
import { keySchema } from "../tenants/views.ts";

export interface DeviceKeyDeps {
  sql: Sql;
  /** This process's key cache: a revocation here is refused at once (other processes: within their TTL). */
  keyCache?: KeyCache;
  devices?: DeviceRegistry;
}

const route = routesOf<DeviceKeyDeps>();
const withKey = keySchema.extend({ key: z.string().meta({ description: "the key itself, shown only here" }) });

function deviceOf(c: Context): string {
  const id = c.req.param("id")!;
  const problem = deviceIdProblem(id);
  if (problem) throw new HttpError(400, "invalid_device_id", `device id ${problem}`);
  return id;
}

export const deviceKeyRoutes = [
  route({
    method: "post",
    path: "/api/v1/devices/:id/keys",
    tag: "devices",
    summary: "Create a key for one device (shown only in this response)",
    description:
      "The key writes only this device's readings (a record of another device id: 403 device_mismatch) and uses no other route. It does not register the device.",
    auth: "tenant",
    body: deviceKeyCreate,
    responses: { 201: ok("the key's row and `key`, the only time it is shown", withKey) },
    handler: async function createDeviceKey(c, { sql }) {
      const device = deviceOf(c);
      const { name } = await parseJson(deviceKeyCreate, c);
      const created = await createKey(sql, c.get("tenant"), name, { kind: "device", device });
      if (!created) throw new HttpError(404, "not_found", "no such tenant");
      return c.json({ ...keyJson(created.row), key: created.key }, 201);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/devices/:id/keys",
    tag: "devices",
    summary: "List one device's keys, revoked ones too (never the key or its hash)",
    auth: "tenant",
    responses: { 200: ok("keys", z.object({ keys: z.array(keySchema) })) },
    handler: async function listDeviceKeys(c, { sql }) {
      return c.json({ keys: (await listKeys(sql, c.get("tenant"), deviceOf(c))).map(keyJson) });
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/devices/:id/keys/:key",
    tag: "devices",
    summary: "Revoke one of a device's keys (by id or prefix)",
    auth: "tenant",
    params: { key: "the key's id or prefix" },
    responses: { 200: ok("the revoked key", keySchema), 404: err("no such key of this device") },
    handler: async function revokeDeviceKey(c, { sql, keyCache }) {
      const row = await revokeKey(sql, c.req.param("key"), c.get("tenant"), deviceOf(c));
      if (!row) throw new HttpError(404, "not_found", "no such key of this device");
      keyCache?.invalidateKey(row.id);
      return c.json(keyJson(row));
    },
  }),
];

const provisionBody = z.strictObject({ device_id: deviceId });
const provisioned = z.object({
  device_id: z.string(),
  key: z.string().meta({ description: "the device's own key, shown only here" }),
  key_id: z.string(),
  prefix: z.string().meta({ description: "the key's prefix: its MQTT username" }),
  registered: z.boolean().meta({ description: "true when this exchange registered the device" }),
});

export const provisionRoutes = [
  route({
    method: "post",
    path: "/api/v1/provision",
    tag: "devices",
    summary: "Exchange a provisioning token and a new device's id for the device's own key, once",
    description:
      "Takes `Authorization: Bearer <provisioning token>` (no other key). Registers the device within max_devices, so it is known under device_policy reject.",
    auth: "tenant",
    body: provisionBody,
    responses: {
      201: ok("the device's key", provisioned),
      403: err("device_limit: the tenant's device cap is reached; key_not_allowed: not a provisioning token"),
      409: err("device_provisioned: the device has an active device key already"),
    },
    handler: async function provision(c, { sql, devices }) {
      const { device_id } = await parseJson(provisionBody, c);
      const tenant = c.get("tenantSettings");
      const { row, key, registered } = await provisionDevice(sql, tenant, device_id);
      devices?.registered(tenant.id, device_id);
      return c.json({ device_id, key, key_id: row.id as string, prefix: row.prefix as string, registered }, 201);
    },
  }),
];
