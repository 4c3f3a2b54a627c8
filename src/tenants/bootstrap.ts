/**
 * The key store's first contents, at every start: the tenants and keys of TELEMETRY_API_KEYS
 * (hash only); the key generated before the key store existed (data/api-keys.json, moved in once);
 * and, when there are no configured keys and no tenant at all, tenant "default" with one new key,
 * returned to be shown once. Under an advisory lock, so processes starting together agree.
 */
import { existsSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { v4 as uuidv4 } from "uuid";
import type { ApiKey } from "../config/schema.ts";
import type { Sql } from "../db/client.ts";
import { logger } from "../lib/log.ts";
import { generateKey, hashKey, keyPrefix, mqttHash } from "./keys.ts";

const log = logger("keys");
const LOCK_ID = 7_302_514_003; // arbitrary, constant: pg_advisory_xact_lock key for the bootstrap

export interface Bootstrap {
  /** Set only when this start generated the key: show it once, never log it. */
  generated?: { tenant: string; key: string };
}

export async function bootstrapKeys(sql: Sql, configured: readonly ApiKey[], dataDir: string): Promise<Bootstrap> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_ID})`;
    const add = async (tenant: string, hash: string, prefix: string, name: string, key?: string) => {
      await tx`INSERT INTO tenants (id, name) VALUES (${tenant}, ${tenant}) ON CONFLICT (id) DO NOTHING`;
      await tx`INSERT INTO api_keys (id, tenant, prefix, hash, name) VALUES (${uuidv4()}, ${tenant}, ${prefix}, ${hash}, ${name}) ON CONFLICT (prefix) DO NOTHING`;
      const [row] = await tx`SELECT tenant, hash, revoked_at FROM api_keys WHERE prefix = ${prefix}`;
      if (row!.hash !== hash)
        throw new Error(
          `a ${name} key of tenant ${tenant} has the prefix of another key in the key store; use another key`,
        );
      if (row!.tenant !== tenant)
        throw new Error(`a ${name} key of tenant ${tenant} is in the key store for tenant ${row!.tenant}`);
      if (key)
        await tx`UPDATE api_keys SET mqtt_hash = ${mqttHash(key)} WHERE prefix = ${prefix} AND hash = ${hash} AND mqtt_hash IS NULL`;
      if (row!.revoked_at)
        log.warn(
          { tenant, prefix },
          `a ${name} key is revoked in the key store and stays revoked; remove it from the configuration`,
        );
    };

    for (const { tenant, key } of configured) {
      const hash = hashKey(key);
      await add(tenant, hash, keyPrefix(key, hash), "bootstrap", key);
    }
    if (configured.length > 0) return {};

    const legacy = join(dataDir, "api-keys.json");
    if (existsSync(legacy)) {
      const { keys } = JSON.parse(readFileSync(legacy, "utf8")) as { keys: Array<{ tenant: string; digest: string }> };
      for (const k of keys) await add(k.tenant, k.digest, `#${k.digest.slice(0, 16)}`, "generated");
      renameSync(legacy, `${legacy}.imported`);
      log.info({ tenants: [...new Set(keys.map((k) => k.tenant))] }, "moved the generated key into the key store");
    }

    const [anyTenant] = await tx`SELECT id FROM tenants ORDER BY id <> 'default', id LIMIT 1`;
    if (anyTenant) {
      // The generated key was shown once, on the first start; say how to get another one.
      log.info(
        { tenant: anyTenant.id },
        `no TELEMETRY_API_KEYS and the key store has tenants, so no key was generated; to make a new key: telemetry keys create ${anyTenant.id} (with this server's --data-dir or DATABASE_URL)`,
      );
      return {};
    }
    const key = generateKey();
    const hash = hashKey(key);
    await add("default", hash, keyPrefix(key, hash), "generated", key);
    return { generated: { tenant: "default", key } };
  });
}
