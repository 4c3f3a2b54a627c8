/**
 * Tenants: their settings from a `tenants` row (limits with the server's defaults applied; the
 * types are in core/tenant.ts), their JSON view, and the zod schemas of the admin API and CLI.
 */
import { z } from "zod";
import type { Config } from "../config/schema.ts";
import { deviceIdProblem } from "../core/record.ts";
import { TENANT_ID_PATTERN } from "../core/subject.ts";
import type { LineMapping } from "../core/line-protocol-map.ts";
import type { TenantLimits, TenantSettings } from "../core/tenant.ts";

/** Limit name (JSON and column) -> setting. */
const LIMIT_COLUMNS = {
  max_devices: "maxDevices",
  rate_per_second: "ratePerSecond",
  burst: "burst",
  device_rate_per_second: "deviceRatePerSecond",
  device_burst: "deviceBurst",
  max_records_per_request: "maxRecordsPerRequest",
} as const satisfies Record<string, keyof TenantLimits>;
export type LimitColumn = keyof typeof LIMIT_COLUMNS;
export const LIMIT_NAMES = Object.keys(LIMIT_COLUMNS) as LimitColumn[];

export function tenantDefaults(config: Config): TenantLimits {
  return {
    maxDevices: config.maxDevices,
    ratePerSecond: config.tenantRate,
    burst: config.tenantBurst,
    deviceRatePerSecond: config.deviceRate,
    deviceBurst: config.deviceBurst,
    maxRecordsPerRequest: config.maxRecordsPerRequest,
  };
}

/** Line-protocol mapping setting (JSON key of the line_protocol column) -> LineMapping field. */
const LINE_PROTOCOL_KEYS = {
  device_tags: "deviceTags",
  bare_measurements: "bareMeasurements",
  lat_fields: "latFields",
  lon_fields: "lonFields",
  series_tags: "seriesTags",
} as const satisfies Record<string, keyof LineMapping>;
type LineProtocolKey = keyof typeof LINE_PROTOCOL_KEYS;
export type LineProtocolJson = Partial<Record<LineProtocolKey, string[]>>;

/** The tenant's own line-protocol settings from its row (jsonb; a string in drivers that do not parse it). */
export function ownLineProtocol(row: TenantRow): LineProtocolJson {
  const raw = typeof row.line_protocol === "string" ? JSON.parse(row.line_protocol) : row.line_protocol;
  if (!raw || typeof raw !== "object") return {};
  const own: LineProtocolJson = {};
  for (const key of Object.keys(LINE_PROTOCOL_KEYS) as LineProtocolKey[])
    if (Array.isArray(raw[key])) own[key] = raw[key].map(String);
  return own;
}

function lineProtocolSettings(row: TenantRow): Partial<LineMapping> | null {
  const own = Object.entries(ownLineProtocol(row)) as [LineProtocolKey, string[]][];
  return own.length === 0 ? null : Object.fromEntries(own.map(([k, v]) => [LINE_PROTOCOL_KEYS[k], v]));
}

/** A `tenants` row as postgres.js returns it. */
export type TenantRow = Record<string, any>;

export function tenantSettings(row: TenantRow, defaults: TenantLimits): TenantSettings {
  const limits = { ...defaults };
  for (const column of LIMIT_NAMES)
    if (row[column] !== null && row[column] !== undefined) limits[LIMIT_COLUMNS[column]] = Number(row[column]);
  return {
    id: row.id,
    status: row.status,
    suspendedReason: row.suspended_reason,
    devicePolicy: row.device_policy,
    limits,
    lineProtocol: lineProtocolSettings(row),
  };
}

/** The admin view: effective limits, and which of them are the tenant's own (the rest follow the server's defaults). */
export function tenantJson(row: TenantRow, defaults: TenantLimits) {
  const s = tenantSettings(row, defaults);
  return {
    id: s.id,
    name: row.name as string,
    status: s.status,
    suspended_reason: s.suspendedReason,
    device_policy: s.devicePolicy,
    limits: Object.fromEntries(LIMIT_NAMES.map((c) => [c, s.limits[LIMIT_COLUMNS[c]]])) as Record<LimitColumn, number>,
    own_limits: LIMIT_NAMES.filter((c) => row[c] !== null),
    /** The tenant's own line-protocol mapping; absent keys follow the server's TELEMETRY_LP_* settings. */
    line_protocol: ownLineProtocol(row),
    created_at: (row.created_at as Date).toISOString(),
  };
}

const count = (max: number) => z.number().int().min(1).max(max);
/** A limit of the tenant's own, or null to follow the server's default. */
const limitsInput = z.strictObject({
  max_devices: count(100_000_000).nullable().optional(),
  rate_per_second: z.number().positive().max(1e9).nullable().optional(),
  burst: count(1e9).nullable().optional(),
  device_rate_per_second: z.number().positive().max(1e9).nullable().optional(),
  device_burst: count(1e9).nullable().optional(),
  max_records_per_request: count(1_000_000).nullable().optional(),
});
export type LimitsInput = z.output<typeof limitsInput>;

const lpNames = (min: number) =>
  z.array(z.string().min(1).max(128), { error: "must be an array of names" }).min(min).max(32).nullable().optional();
/** The tenant's own line-protocol settings; a null key goes back to the server's setting. */
const lineProtocolInput = z.strictObject({
  device_tags: lpNames(1),
  bare_measurements: lpNames(0),
  lat_fields: lpNames(1),
  lon_fields: lpNames(1),
  series_tags: lpNames(0),
});
export type LineProtocolInput = z.output<typeof lineProtocolInput>;

const name = z.string().trim().min(1).max(128);
const devicePolicy = z.enum(["auto", "reject"], { error: "must be auto or reject" });

export const tenantCreate = z.strictObject({
  id: z.string().regex(TENANT_ID_PATTERN, `must match ${TENANT_ID_PATTERN} (lowercase letters, digits, '_' and '-')`),
  name: name.optional(),
  device_policy: devicePolicy.default("auto"),
  limits: limitsInput.default({}),
  line_protocol: lineProtocolInput.optional(),
});
export type TenantCreate = z.output<typeof tenantCreate>;

export const tenantPatch = z
  .strictObject({
    name: name.optional(),
    status: z.enum(["active", "suspended"], { error: "must be active or suspended" }).optional(),
    suspended_reason: z.string().trim().min(1).max(500).optional(),
    device_policy: devicePolicy.optional(),
    limits: limitsInput.optional(),
    line_protocol: lineProtocolInput.optional(),
  })
  .refine((p) => (p.status === "suspended") === (p.suspended_reason !== undefined), {
    message: "suspending takes a suspended_reason (and only suspending does)",
    path: ["suspended_reason"],
  });
export type TenantPatch = z.output<typeof tenantPatch>;

const keyName = z.string().trim().min(1).max(128).default("default");
export const deviceId = z.string().superRefine((id, ctx) => {
  const problem = deviceIdProblem(id);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** A key of the admin API and the CLI: a tenant key (default), one device's key, or a provisioning token. */
export const keyCreate = z
  .strictObject({
    name: keyName,
    kind: z.enum(["tenant", "device", "provision"], { error: "must be tenant, device or provision" }).default("tenant"),
    device: deviceId.optional(),
  })
  .refine((k) => (k.kind === "device") === (k.device !== undefined), {
    message: "a device key takes a device (and only a device key does)",
    path: ["device"],
  });
export type KeyCreate = z.output<typeof keyCreate>;

/** A device's key through the tenant API (the device is in the path). */
export const deviceKeyCreate = z.strictObject({ name: keyName });
