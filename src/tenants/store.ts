/** The key store: tenants and API keys in PostgreSQL, for the admin API, the CLI and the key cache. */
import { v4 as uuidv4 } from "uuid";
import type { Sql } from "../db/client.ts";
import { generateKey, hashKey, keyPrefix, mqttHash } from "./keys.ts";
import type { KeyKind } from "../core/tenant.ts";
import {
  type LimitsInput,
  type LineProtocolInput,
  type LineProtocolJson,
  ownLineProtocol,
  type TenantCreate,
  type TenantPatch,
  type TenantRow,
} from "./tenant.ts";

export type KeyRow = Record<string, any>;

/** What listings show of a key: never the key, never its hash. */
export function keyJson(row: KeyRow) {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    id: row.id as string,
    tenant: row.tenant as string,
    prefix: row.prefix as string,
    name: row.name as string,
    kind: row.kind as KeyKind,
    device: (row.device as string | null) ?? null,
    created_at: iso(row.created_at),
    revoked_at: iso(row.revoked_at),
    last_used_at: iso(row.last_used_at),
  };
}

const KEY_COLUMNS = "id, tenant, prefix, name, kind, device, created_at, revoked_at, last_used_at";

/** What a key may do: a tenant key, one device's key, or a provisioning token. */
export type KeyScope = { kind: "tenant" | "provision"; device?: null } | { kind: "device"; device: string };
const TENANT_SCOPE: KeyScope = { kind: "tenant" };

/** The scope of a validated key request (keyCreate: a device key always has its device). */
export function scopeOf(input: { kind: KeyKind; device?: string | undefined }): KeyScope {
  return input.kind === "device" ? { kind: "device", device: input.device! } : { kind: input.kind };
}

/** Undefined limits are left as they are; null ones go back to the server's defaults. */
function limitColumns(limits: LimitsInput | undefined): Record<string, number | null> {
  return Object.fromEntries(Object.entries(limits ?? {}).filter(([, v]) => v !== undefined)) as Record<
    string,
    number | null
  >;
}

/** The tenant's own line-protocol settings after `patch` (null keys removed); null when none is left. */
function lineProtocolColumn(own: LineProtocolJson, patch: LineProtocolInput): LineProtocolJson | null {
  const next: Record<string, unknown> = { ...own };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v;
  }
  return Object.keys(next).length === 0 ? null : (next as LineProtocolJson);
}

function lineProtocolOf(sql: Sql, own: LineProtocolJson, patch: LineProtocolInput | undefined) {
  if (patch === undefined) return {};
  const column = lineProtocolColumn(own, patch);
  return { line_protocol: column === null ? null : sql.json(column) };
}

/** The new tenant, or null when the id is taken. */
export async function createTenant(sql: Sql, input: TenantCreate): Promise<TenantRow | null> {
  const row = {
    id: input.id,
    name: input.name ?? input.id,
    device_policy: input.device_policy,
    ...limitColumns(input.limits),
    ...lineProtocolOf(sql, {}, input.line_protocol),
  };
  const [created] = await sql`INSERT INTO tenants ${sql(row)} ON CONFLICT (id) DO NOTHING RETURNING *`;
  return created ?? null;
}

export async function listTenants(sql: Sql): Promise<TenantRow[]> {
  return [...(await sql`SELECT * FROM tenants ORDER BY id`)];
}

export async function getTenant(sql: Sql, id: string): Promise<TenantRow | undefined> {
  const [row] = await sql`SELECT * FROM tenants WHERE id = ${id}`;
  return row;
}

export async function updateTenant(sql: Sql, id: string, patch: TenantPatch): Promise<TenantRow | undefined> {
  const changes: Record<string, unknown> = { ...limitColumns(patch.limits) };
  if (patch.name !== undefined) changes.name = patch.name;
  if (patch.device_policy !== undefined) changes.device_policy = patch.device_policy;
  if (patch.line_protocol !== undefined) {
    const current = await getTenant(sql, id);
    if (!current) return undefined;
    Object.assign(changes, lineProtocolOf(sql, ownLineProtocol(current), patch.line_protocol));
  }
  if (patch.status !== undefined) {
    changes.status = patch.status;
    changes.suspended_reason = patch.status === "suspended" ? patch.suspended_reason! : null;
  }
  if (Object.keys(changes).length === 0) return getTenant(sql, id);
  const [row] = await sql`UPDATE tenants SET ${sql(changes)} WHERE id = ${id} RETURNING *`;
  return row;
}

/** A new key for the tenant: the key itself is in the result only (show it once), the row holds its hash. */
export async function createKey(
  sql: Sql,
  tenant: string,
  name: string,
  scope: KeyScope = TENANT_SCOPE,
): Promise<{ row: KeyRow; key: string } | undefined> {
  if (!(await getTenant(sql, tenant))) return undefined;
  return insertKey(sql, tenant, name, scope);
}

/** Inserts a new key (also inside a transaction); the tenant must exist. */
export async function insertKey(
  sql: Sql,
  tenant: string,
  name: string,
  scope: KeyScope,
): Promise<{ row: KeyRow; key: string }> {
  for (;;) {
    const key = generateKey();
    const hash = hashKey(key);
    const [row] = await sql`
      INSERT INTO api_keys (id, tenant, prefix, hash, name, mqtt_hash, kind, device)
      VALUES (${uuidv4()}, ${tenant}, ${keyPrefix(key, hash)}, ${hash}, ${name}, ${scope.kind === "provision" ? null : mqttHash(key)}, ${scope.kind}, ${scope.device ?? null})
      ON CONFLICT (prefix) DO NOTHING
      RETURNING ${sql.unsafe(KEY_COLUMNS)}`;
    if (row) return { row, key }; // else a 48-bit prefix collided: draw again
  }
}

export async function listKeys(sql: Sql, tenant?: string, device?: string): Promise<KeyRow[]> {
  const where = tenant
    ? sql`WHERE tenant = ${tenant} ${device === undefined ? sql`` : sql`AND device = ${device}`}`
    : sql``;
  return [...(await sql`SELECT ${sql.unsafe(KEY_COLUMNS)} FROM api_keys ${where} ORDER BY tenant, created_at, id`)];
}

/** Revokes a key by id or prefix (within `tenant`, and that device's keys, when given); the row stays, for the record. */
export async function revokeKey(sql: Sql, ref: string, tenant?: string, device?: string): Promise<KeyRow | undefined> {
  const isId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);
  const [row] = await sql`
    UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
    WHERE ${isId ? sql`id = ${ref}` : sql`prefix = ${ref}`} ${tenant ? sql`AND tenant = ${tenant}` : sql``}
      ${device === undefined ? sql`` : sql`AND device = ${device}`}
    RETURNING ${sql.unsafe(KEY_COLUMNS)}`;
  return row;
}

/** The key with this prefix and its tenant, for verification by the key cache. */
export async function findKey(sql: Sql, prefix: string): Promise<{ key: KeyRow; tenant: TenantRow } | undefined> {
  const [row] = await sql`
    SELECT k.id AS key_id, k.hash AS key_hash, k.revoked_at AS key_revoked_at, k.kind AS key_kind, k.device AS key_device, t.*
    FROM api_keys k JOIN tenants t ON t.id = k.tenant WHERE k.prefix = ${prefix}`;
  if (!row) return undefined;
  const { key_id, key_hash, key_revoked_at, key_kind, key_device, ...tenant } = row;
  return {
    key: { id: key_id, hash: key_hash, revoked_at: key_revoked_at, kind: key_kind, device: key_device },
    tenant,
  };
}

/** Active keys with their tenants, most recently used first, to warm the key cache. */
export async function activeKeys(sql: Sql, limit: number): Promise<Array<{ key: KeyRow; tenant: TenantRow }>> {
  const rows = await sql`
    SELECT k.id AS key_id, k.hash AS key_hash, k.kind AS key_kind, k.device AS key_device, t.*
    FROM api_keys k JOIN tenants t ON t.id = k.tenant WHERE k.revoked_at IS NULL
    ORDER BY k.last_used_at DESC NULLS LAST, k.created_at DESC LIMIT ${limit}`;
  return rows.map(({ key_id, key_hash, key_kind, key_device, ...tenant }) => ({
    key: { id: key_id, hash: key_hash, kind: key_kind, device: key_device },
    tenant,
  }));
}

/** Records when keys were last used (to the minute: the key cache writes them in batches). */
export async function touchKeys(sql: Sql, used: ReadonlyMap<string, number>): Promise<void> {
  if (used.size === 0) return;
  await sql`
    UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
    FROM unnest(${[...used.keys()]}::uuid[], ${[...used.values()].map((ms) => new Date(ms).toISOString())}::timestamptz[]) AS u(id, at)
    WHERE k.id = u.id`;
}
