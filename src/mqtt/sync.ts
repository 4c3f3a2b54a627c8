/**
 * Keeps the supervised nats-server's MQTT users in step with the key store: every `intervalMs` it
 * reads the active keys of active tenants and, when the rendered users differ from the file,
 * rewrites the file (0600, atomically) and reloads nats-server (SIGHUP; connections of users that
 * are gone are closed). So a new key works over MQTT, and a revoked key or a suspended tenant
 * stops working, within `intervalMs`. A failed read (database away) keeps the last users.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import { logger } from "../lib/log.ts";
import { renderUsers, type MqttKey } from "../core/mqtt-users.ts";

const log = logger("mqtt");

export interface MqttUserSync {
  /** Reads the key store now and applies it; resolves once nats-server was told. */
  syncNow(): Promise<void>;
  stop(): Promise<void>;
}

export async function loadMqttKeys(sql: Sql): Promise<MqttKey[]> {
  const rows = await sql<Array<{ prefix: string; tenant: string; device: string | null; mqtt_hash: string }>>`
    SELECT k.prefix, k.tenant, k.device, k.mqtt_hash FROM api_keys k JOIN tenants t ON t.id = k.tenant
    WHERE k.revoked_at IS NULL AND k.mqtt_hash IS NOT NULL AND k.kind <> 'provision' AND t.status = 'active'`;
  return rows.map((r) => ({ prefix: r.prefix, tenant: r.tenant, device: r.device, mqttHash: r.mqtt_hash }));
}

export function startMqttUserSync(
  sql: Sql,
  nats: { usersFile: string; reload(): void },
  intervalMs: number,
): MqttUserSync {
  let stopped = false;
  let running: Promise<void> | null = null;
  const apply = async () => {
    const text = renderUsers(await loadMqttKeys(sql));
    let current = "";
    try {
      current = readFileSync(nats.usersFile, "utf8");
    } catch {}
    if (text === current) return;
    const tmp = `${nats.usersFile}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, nats.usersFile);
    nats.reload();
    log.info({ users: text.split("\n").filter((l) => l.includes("user:")).length - 1 }, "MQTT users updated");
  };
  const syncNow = () =>
    (running ??= apply()
      .catch((err) =>
        log.warn({ err: errorText(err) }, "could not read the key store for MQTT users; keeping the last ones"),
      )
      .finally(() => (running = null)));
  const timer = setInterval(() => {
    if (!stopped) void syncNow();
  }, intervalMs);
  return {
    syncNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
