/**
 * Device registration, tenant-scoped: POST /api/v1/devices {device_id} registers a device ahead of
 * its first reading (needed under device_policy 'reject'; counts toward max_devices), DELETE
 * /api/v1/devices/{id} removes it from the registry (its readings stay until retention).
 */
import { z } from "zod";
import { deviceIdProblem } from "../core/record.ts";
import type { Sql } from "../db/client.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { parseJson } from "../http/validate.ts";
import { err } from "../openapi/views.ts";
import type { DeviceRegistry } from "../tenants/devices.ts";

export const registerBody = z.strictObject({
  device_id: z.string().superRefine((id, ctx) => {
    const problem = deviceIdProblem(id);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }),
});

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
      // One registration per tenant at a time, so the cap holds exactly for registrations.
      const created = await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtext('device_registrations'), hashtext(${tenant.id}))`;
        const [known] = await tx`
          SELECT 1 FROM device_registrations WHERE tenant = ${tenant.id} AND device_id = ${device_id}
          UNION ALL SELECT 1 FROM devices WHERE tenant = ${tenant.id} AND device_id = ${device_id}`;
        if (known) return false;
        const [{ n }] = (await tx`
          SELECT count(*)::int AS n FROM (SELECT device_id FROM devices WHERE tenant = ${tenant.id}
                                           UNION SELECT device_id FROM device_registrations WHERE tenant = ${tenant.id}) d`) as unknown as [
          { n: number },
        ];
        if (n >= tenant.limits.maxDevices)
          throw new HttpError(403, "device_limit", `tenant device limit (${tenant.limits.maxDevices}) reached`);
        await tx`INSERT INTO device_registrations (tenant, device_id) VALUES (${tenant.id}, ${device_id})`;
        return true;
      });
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
