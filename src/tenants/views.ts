/**
 * zod schemas of the admin API's answers (tenants, keys), tied to the functions that build that
 * JSON by compile-time checks (as in openapi/views.ts).
 */
import { z } from "zod";
import { assertSame, iso, isoOrNull, type Same } from "../openapi/views.ts";
import type { keyJson } from "./store.ts";
import { LIMIT_NAMES, type tenantJson } from "./tenant.ts";

export const tenantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(["active", "suspended"]),
    suspended_reason: z.string().nullable(),
    device_policy: z.enum(["auto", "reject"]),
    limits: z
      .record(z.enum(LIMIT_NAMES as [string, ...string[]]), z.number())
      .meta({ description: "effective limits" }),
    own_limits: z
      .array(z.string())
      .meta({ description: "limits set for this tenant; the rest follow the server's defaults" }),
    line_protocol: z
      .object({
        device_tags: z.array(z.string()).optional(),
        bare_measurements: z.array(z.string()).optional(),
        lat_fields: z.array(z.string()).optional(),
        lon_fields: z.array(z.string()).optional(),
        series_tags: z.array(z.string()).optional(),
      })
      .meta({
        description: "the tenant's own line-protocol mapping; absent keys follow the server's TELEMETRY_LP_* settings",
      }),
    created_at: iso,
  })
  .meta({ id: "Tenant" });

export const keySchema = z
  .object({
    id: z.string(),
    tenant: z.string(),
    prefix: z.string(),
    name: z.string(),
    kind: z.enum(["tenant", "device", "provision"]).meta({
      description:
        "tenant: any device, tenant API; device: only its device's readings; provision: only POST /api/v1/provision",
    }),
    device: z.string().nullable().meta({ description: "the device of a device key, else null" }),
    created_at: isoOrNull,
    revoked_at: isoOrNull,
    last_used_at: isoOrNull,
  })
  .meta({ id: "ApiKey" });

assertSame<Same<z.output<typeof keySchema>, ReturnType<typeof keyJson>>>();
assertSame<Same<keyof z.output<typeof tenantSchema>, keyof ReturnType<typeof tenantJson>>>();
