/** `telemetry keys create|list|revoke`: API keys of the key store, straight in the database. */
import { defineCommand } from "citty";
import { createKey, keyJson, listKeys, revokeKey, scopeOf } from "../tenants/store.ts";
import { keyCreate } from "../tenants/tenant.ts";
import { jsonArg, onStore, print, storeSettings, validated } from "./tenants.ts";

const scope = (k: ReturnType<typeof keyJson>) => (k.kind === "device" ? `device ${k.device}` : k.kind);
const describe = (k: ReturnType<typeof keyJson>) =>
  `${k.id}\t${k.tenant}\t${k.prefix}\t${scope(k)}\t${JSON.stringify(k.name)}\tcreated ${k.created_at}\t${k.revoked_at ? `revoked ${k.revoked_at}` : "active"}\tlast used ${k.last_used_at ?? "never"}`;

const create = defineCommand({
  meta: {
    name: "create",
    description:
      "Create an API key for a tenant (or one device's key, or a provisioning token); printed once, only its hash is stored",
  },
  args: {
    ...storeSettings,
    ...jsonArg,
    tenant: { type: "positional", description: "Tenant id", required: true },
    name: { type: "string", description: "What the key is for" },
    device: { type: "string", description: "A device key: it writes only this device's readings" },
    provisioning: {
      type: "boolean",
      description: "A provisioning token: new devices exchange it for their own key (POST /api/v1/provision)",
    },
  },
  async run({ args }) {
    await onStore(args, async (sql) => {
      const kind = args.device !== undefined ? "device" : args.provisioning ? "provision" : "tenant";
      if (args.device !== undefined && args.provisioning)
        throw new Error("--device and --provisioning exclude each other");
      const input = validated(keyCreate, { name: args.name, kind, device: args.device });
      const created = await createKey(sql, args.tenant, input.name, scopeOf(input));
      if (!created) throw new Error(`no tenant ${args.tenant}`);
      const view = { ...keyJson(created.row), key: created.key };
      print(
        args.json,
        view,
        () =>
          `${describe(view)}\n\n  ${created.key}\n\n(shown only now: store it; the key store keeps only its SHA-256)`,
      );
    });
  },
});

const list = defineCommand({
  meta: {
    name: "list",
    description:
      "List keys (prefix, scope: tenant, device <id> or provision, name, created, revoked, last used; never the key)",
  },
  args: {
    ...storeSettings,
    ...jsonArg,
    tenant: { type: "positional", description: "Only this tenant's keys", required: false },
  },
  async run({ args }) {
    await onStore(args, async (sql) => {
      const keys = (await listKeys(sql, args.tenant)).map(keyJson);
      print(args.json, keys, () => (keys.length ? keys.map(describe).join("\n") : "no keys"));
    });
  },
});

const revoke = defineCommand({
  meta: { name: "revoke", description: "Revoke a key by id or prefix: 401 within TELEMETRY_AUTH_CACHE_TTL" },
  args: { ...storeSettings, ...jsonArg, key: { type: "positional", description: "Key id or prefix", required: true } },
  async run({ args }) {
    await onStore(args, async (sql) => {
      const row = await revokeKey(sql, args.key);
      if (!row) throw new Error(`no key ${args.key}`);
      print(args.json, keyJson(row), () => `revoked ${describe(keyJson(row))}`);
    });
  },
});

export const keys = defineCommand({
  meta: { name: "keys", description: "API keys of the key store (directly in the database)" },
  subCommands: { create, list, revoke },
});
