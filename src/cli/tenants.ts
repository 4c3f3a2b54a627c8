/** `telemetry tenants create|list|update|suspend|resume`: the key store's tenants, straight in the database. */
import { defineCommand, type ArgsDef } from "citty";
import type { z } from "zod";
import type { Sql } from "../db/client.ts";
import { issuesOf } from "../http/validate.ts";
import { createTenant, listTenants, updateTenant } from "../tenants/store.ts";
import type { TenantLimits } from "../core/tenant.ts";
import {
  LIMIT_NAMES,
  tenantCreate,
  tenantDefaults,
  tenantJson,
  tenantPatch,
  type TenantRow,
} from "../tenants/tenant.ts";
import { configOrExit, fail, settingArgs } from "./common.ts";
import { withDatabase } from "./services.ts";

/**
 * Where the database is. The default limits shown for tenants without their own come from the
 * environment (TELEMETRY_TENANT_RATE, ...), as the server's do: their flags would clash with the
 * tenant's own (--device-burst).
 */
export const storeSettings = settingArgs(["databaseUrl", "dataDir", "logLevel"]);
export const jsonArg = { json: { type: "boolean", description: "Print JSON" } } as const;

const limitArgs: ArgsDef = Object.fromEntries(
  LIMIT_NAMES.map((n) => [
    n.replaceAll("_", "-"),
    { type: "string", description: `The tenant's own ${n}; 'default' follows the server's default`, valueHint: "n" },
  ]),
);

const LP_KEYS = ["device_tags", "bare_measurements", "lat_fields", "lon_fields", "series_tags"] as const;
const lineProtocolArgs: ArgsDef = Object.fromEntries(
  LP_KEYS.map((k) => [
    `lp-${k.replaceAll("_", "-")}`,
    {
      type: "string",
      description: `Line protocol: the tenant's own ${k}, comma-separated; 'default' follows TELEMETRY_LP_${k.toUpperCase()}`,
      valueHint: "a,b",
    },
  ]),
);

/** The line_protocol patch of the --lp-* flags (undefined when none is given). */
function lineProtocolFrom(args: Record<string, unknown>) {
  const patch: Record<string, string[] | null> = {};
  for (const k of LP_KEYS) {
    const text = args[`lp-${k.replaceAll("_", "-")}`];
    if (typeof text !== "string") continue;
    patch[k] =
      text.trim() === "default"
        ? null
        : text
            .split(",")
            .map((n) => n.trim())
            .filter(Boolean);
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}

/** The configuration from the setting flags above only (the tenant's own --max-devices is not TELEMETRY_MAX_DEVICES). */
function storeConfig(args: Record<string, unknown>) {
  return configOrExit(Object.fromEntries(Object.keys(storeSettings).map((k) => [k, args[k] as string | undefined])));
}

/** Runs `fn` on the database; a missing table means the database was never migrated. */
export function onStore(
  args: Record<string, unknown>,
  fn: (sql: Sql, defaults: TenantLimits) => Promise<void>,
): Promise<void> {
  const config = storeConfig(args);
  return withDatabase(config, (sql) => fn(sql, tenantDefaults(config))).catch((err) =>
    fail(
      (err as { code?: string }).code === "42P01"
        ? new Error("the key store's tables are missing: run `telemetry migrate` first")
        : err,
    ),
  );
}

export function validated<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success)
    throw new Error(
      issuesOf(r.error)
        .map((i) => `${i.path ? `${i.path}: ` : ""}${i.message}`)
        .join("; "),
    );
  return r.data;
}

export const print = (asJson: unknown, value: unknown, text: () => string) =>
  process.stdout.write(`${asJson ? JSON.stringify(value, null, 2) : text()}\n`);

function limitsFrom(args: Record<string, unknown>) {
  const limits: Record<string, unknown> = {};
  for (const n of LIMIT_NAMES) {
    const text = args[n.replaceAll("_", "-")];
    if (typeof text !== "string") continue;
    limits[n] = text === "default" ? null : Number.isFinite(Number(text)) && text.trim() !== "" ? Number(text) : text;
  }
  return limits;
}

function describe(t: ReturnType<typeof tenantJson>): string {
  const limits = LIMIT_NAMES.map((n) => `${n}=${t.limits[n]}${t.own_limits.includes(n) ? "" : " (default)"}`).join(" ");
  const status = t.status === "suspended" ? `suspended (${t.suspended_reason})` : "active";
  const lp = Object.entries(t.line_protocol).map(([k, v]) => `\tline_protocol.${k}=${v.join(",")}`);
  return `${t.id}\t${status}\tdevice_policy=${t.device_policy}\t${limits}\t${JSON.stringify(t.name)}${lp.join("")}`;
}

const id = { id: { type: "positional", description: "Tenant id", required: true } } as const;

const create = defineCommand({
  meta: { name: "create", description: "Create a tenant (then give it a key: telemetry keys create <tenant>)" },
  args: {
    ...storeSettings,
    ...jsonArg,
    ...id,
    name: { type: "string", description: "Display name (default: the id)" },
    "device-policy": { type: "string", description: "auto (default) or reject" },
    ...limitArgs,
    ...lineProtocolArgs,
  },
  async run({ args }) {
    await onStore(args, async (sql, defaults) => {
      const input = validated(tenantCreate, {
        id: args.id,
        name: args.name,
        device_policy: args["device-policy"],
        limits: limitsFrom(args),
        line_protocol: lineProtocolFrom(args),
      });
      const row = await createTenant(sql, input);
      if (!row) throw new Error(`tenant ${input.id} exists`);
      const t = tenantJson(row, defaults);
      print(args.json, t, () => `created ${describe(t)}`);
    });
  },
});

const list = defineCommand({
  meta: { name: "list", description: "List tenants with their status, device policy and effective limits" },
  args: { ...storeSettings, ...jsonArg },
  async run({ args }) {
    await onStore(args, async (sql, defaults) => {
      const tenants = (await listTenants(sql)).map((t) => tenantJson(t, defaults));
      print(args.json, tenants, () => (tenants.length ? tenants.map(describe).join("\n") : "no tenants"));
    });
  },
});

/** Applies a patch; the server's key cache sees it within TELEMETRY_AUTH_CACHE_TTL. */
function patchCommand(
  name: string,
  description: string,
  extra: ArgsDef,
  patchOf: (args: Record<string, any>) => unknown,
) {
  return defineCommand({
    meta: { name, description: `${description} (takes effect within TELEMETRY_AUTH_CACHE_TTL)` },
    args: { ...storeSettings, ...jsonArg, ...id, ...extra },
    async run({ args }) {
      await onStore(args, async (sql, defaults) => {
        const row: TenantRow | undefined = await updateTenant(
          sql,
          args.id as string,
          validated(tenantPatch, patchOf(args)),
        );
        if (!row) throw new Error(`no tenant ${args.id}`);
        const t = tenantJson(row, defaults);
        print(args.json, t, () => describe(t));
      });
    },
  });
}

const update = patchCommand(
  "update",
  "Change a tenant's name, device policy, limits or line-protocol mapping",
  {
    name: { type: "string", description: "Display name" },
    "device-policy": { type: "string", description: "auto or reject" },
    ...limitArgs,
    ...lineProtocolArgs,
  },
  (args) => ({
    name: args.name,
    device_policy: args["device-policy"],
    limits: limitsFrom(args),
    line_protocol: lineProtocolFrom(args),
  }),
);
const suspend = patchCommand(
  "suspend",
  "Suspend a tenant: its keys get 403 tenant_suspended",
  { reason: { type: "string", description: "Why (shown to the tenant)", required: true } },
  (args) => ({
    status: "suspended",
    suspended_reason: args.reason,
  }),
);
const resume = patchCommand("resume", "Resume a suspended tenant", {}, () => ({ status: "active" }));

export const tenants = defineCommand({
  meta: { name: "tenants", description: "Tenants of the key store (directly in the database)" },
  subCommands: { create, list, update, suspend, resume },
});
