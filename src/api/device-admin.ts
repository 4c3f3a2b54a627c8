/**
 * Device registration, tenant-scoped: POST /api/v1/devices {device_id} registers a device ahead of
 * its first reading (needed under device_policy 'reject'; counts toward max_devices), DELETE
 * /api/v1/devices/{id} removes it from the registry (its readings stay until retention).
 */
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { parseJson } from "../http/validate.ts";
import { err } from "../openapi/views.ts";
import type { DeviceRegistry } from "../tenants/devices.ts";
import { registerDevice as register } from "../tenants/provision.ts";
import { deviceId } from "../tenants/tenant.ts";

export const registerBody = z.strictObject({ device_id: deviceId });

export interface DeviceAdminDeps {
  sql: Sql;
  /** The ingest role's device sets in this process, told about registrations at once. */
  devices?: DeviceRegistry;
}

const route = routesOf<DeviceAdminDeps>();
const registered = z.object({ device_id: z.string(), registered: z.literal(true) });

export const deviceAdminRoutes = [
  route({
    method: "post",
    path: "/api/v1/devices",
    tag: "devices",
    summary: "Register a device ahead of its first reading",
    description: "Needed under device_policy reject; counts toward max_devices.",
    auth: "tenant",
    body: registerBody,
    responses: {
      201: ok("registered", registered),
      200: ok("already known", registered),
      403: err("device_limit: the tenant's device cap is reached, or the tenant is suspended"),
    },
    handler: async function registerDevice(c, { sql, devices: registry }) {
      const { device_id } = await parseJson(registerBody, c);
      const tenant = c.get("tenantSettings");
      const created = await register(sql, tenant, device_id);
      registry?.registered(tenant.id, device_id);
      return c.json({ device_id, registered: true }, created ? 201 : 200);
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/devices/:id",
    tag: "devices",
    summary: "Remove a device from the registry (its readings stay until retention)",
    auth: "tenant",
    responses: { 204: ok("removed") },
    handler: async function deleteDevice(c, { sql, devices: registry }) {
      const tenant = c.get("tenant");
      const id = c.req.param("id");
      const [a, b] = await sql.begin((tx) => [
        tx`DELETE FROM device_registrations WHERE tenant = ${tenant} AND device_id = ${id}`,
        tx`DELETE FROM devices WHERE tenant = ${tenant} AND device_id = ${id}`,
      ]);
      if (a!.count + b!.count === 0) throw new HttpError(404, "not_found", "no such device");
      registry?.deleted(tenant, id);
      return c.body(null, 204);
    },
  }),
];
