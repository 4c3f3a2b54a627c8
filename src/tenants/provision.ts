/**
 * Device registration and the provisioning exchange, in the key store. Both run one per tenant at
 * a time (an advisory lock), so the device cap holds exactly for registrations and a device is
 * provisioned at most once however many exchanges race.
 */
import type { Sql } from "../db/client.ts";
import { HttpError } from "../http/errors.ts";
import type { TenantSettings } from "../core/tenant.ts";
import { insertKey, type KeyRow } from "./store.ts";

type Tx = Sql;

const lock = (tx: Tx, tenant: string) =>
  tx`SELECT pg_advisory_xact_lock(hashtext('device_registrations'), hashtext(${tenant}))`;

/** Registers the device (inside a transaction holding the tenant's lock): true when new, 403 device_limit at the cap. */
async function registerLocked(tx: Tx, tenant: TenantSettings, deviceId: string): Promise<boolean> {
  const [known] = await tx`
    SELECT 1 FROM device_registrations WHERE tenant = ${tenant.id} AND device_id = ${deviceId}
    UNION ALL SELECT 1 FROM devices WHERE tenant = ${tenant.id} AND device_id = ${deviceId}`;
  if (known) return false;
  const [{ n }] = (await tx`
    SELECT count(*)::int AS n FROM (SELECT device_id FROM devices WHERE tenant = ${tenant.id}
                                     UNION SELECT device_id FROM device_registrations WHERE tenant = ${tenant.id}) d`) as unknown as [
    { n: number },
  ];
  if (n >= tenant.limits.maxDevices)
    throw new HttpError(403, "device_limit", `tenant device limit (${tenant.limits.maxDevices}) reached`);
  await tx`INSERT INTO device_registrations (tenant, device_id) VALUES (${tenant.id}, ${deviceId})`;
  return true;
}

/** Registers a device ahead of its first reading: true when new, false when known; 403 device_limit at the cap. */
export function registerDevice(sql: Sql, tenant: TenantSettings, deviceId: string): Promise<boolean> {
  return sql.begin(async (tx) => {
    await lock(tx as unknown as Tx, tenant.id);
    return registerLocked(tx as unknown as Tx, tenant, deviceId);
  }) as Promise<boolean>;
}

/**
 * A provisioning token's exchange: the device's own key, once. 409 device_provisioned when the
 * device has an active device key already (revoke it to provision the device again); the device is
 * registered (so it is known under device_policy reject), within the device cap (403 device_limit).
 */
export function provisionDevice(
  sql: Sql,
  tenant: TenantSettings,
  deviceId: string,
): Promise<{ row: KeyRow; key: string; registered: boolean }> {
  return sql.begin(async (t) => {
    const tx = t as unknown as Tx;
    await lock(tx, tenant.id);
    const [active] = await tx`
      SELECT 1 FROM api_keys WHERE tenant = ${tenant.id} AND device = ${deviceId} AND revoked_at IS NULL`;
    if (active)
      throw new HttpError(
        409,
        "device_provisioned",
        `device ${deviceId} already has an active device key; a tenant key can revoke it (DELETE /api/v1/devices/${deviceId}/keys/{key}) to provision it again`,
      );
    const registered = await registerLocked(tx, tenant, deviceId);
    const created = await insertKey(tx, tenant.id, "provisioned", { kind: "device", device: deviceId });
    return { ...created, registered };
  }) as Promise<{ row: KeyRow; key: string; registered: boolean }>;
}
