/**
 * Authentication. Tenant routes: `Authorization: Bearer <api key>`, resolved through the key
 * cache to the tenant and its settings (401 unknown or revoked, 403 suspended, 503 when the key
 * store cannot tell or is asked too much, 429 after too many failed checks from one address). Admin routes: `Authorization: Bearer <TELEMETRY_ADMIN_TOKEN>`.
 * Each mount says which key kinds it takes (403 key_not_allowed for another kind): ingest takes
 * tenant and device keys (a device key's device is on the context, admission holds it to it), the
 * tenant API tenant keys only, POST /api/v1/provision provisioning tokens only.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { KeyKind, KeyResolver, RequestOrigin, TenantSettings } from "../core/tenant.ts";
import { HttpError } from "./errors.ts";

export type { KeyResolver };

export type TenantEnv = {
  Variables: {
    tenant: string;
    tenantSettings: TenantSettings;
    /** The key's kind, and its device when it is a device key (null otherwise). */
    keyKind: KeyKind;
    device: string | null;
  };
};

/** The key kinds that may write readings: gateway (tenant) keys and device keys. */
export const WRITER_KEYS: readonly KeyKind[] = ["tenant", "device"];

const NOT_ALLOWED: Record<KeyKind, string> = {
  tenant: "this route does not take a tenant API key",
  device: "a device key can only write its own device's readings",
  provision: "a provisioning token can only be exchanged for a device's key (POST /api/v1/provision)",
};

function bearer(header: string | undefined, what: string): string {
  if (!header)
    throw new HttpError(401, "unauthenticated", `missing Authorization: Bearer <${what}>`, undefined, {
      "WWW-Authenticate": "Bearer",
    });
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m)
    throw new HttpError(401, "unauthenticated", `Authorization header must be 'Bearer <${what}>'`, undefined, {
      "WWW-Authenticate": "Bearer",
    });
  return m[1]!;
}

/**
 * Where the request came from: the socket's peer, as Bun's server tells it (Hono passes the server
 * as the app's env), and X-Forwarded-For, which counts only when the peer is a trusted proxy.
 */
export function requestOrigin(c: Context): RequestOrigin {
  return new LazyOrigin(c);
}

/**
 * Read only when asked: the key cache needs the origin only for a key it has not verified. A class
 * (getters on its prototype) rather than an object literal with getters, which JavaScriptCore
 * builds with a property definition per request.
 */
class LazyOrigin implements RequestOrigin {
  constructor(private readonly c: Context) {}
  get peer(): string {
    const server = this.c.env as { requestIP?: (req: Request) => { address: string } | null } | undefined;
    return server?.requestIP?.(this.c.req.raw)?.address ?? "unknown";
  }
  get forwardedFor(): string | undefined {
    return this.c.req.header("x-forwarded-for");
  }
}

const seconds = (ms: number) => String(Math.max(1, Math.ceil(ms / 1000)));

/**
 * Where a request carries its key. The default is `Authorization: Bearer <key>`; a source whose
 * clients cannot send that (a tracker with the key in its URL, an InfluxDB client's `Token`)
 * passes its own. It throws HttpError 401 when the request has no usable key.
 */
export type KeyExtractor = (c: Context) => string;

export const bearerKey: KeyExtractor = (c) => bearer(c.req.header("authorization"), "api key");

/** `kinds`: the key kinds this mount takes (default: those that write readings). */
export function requireTenant(
  resolve: KeyResolver,
  extract: KeyExtractor = bearerKey,
  kinds: readonly KeyKind[] = WRITER_KEYS,
) {
  return createMiddleware<TenantEnv>(async function requireTenant(c, next) {
    const r = await resolve(extract(c), requestOrigin(c));
    if (r.status === "unavailable") {
      throw new HttpError(
        503,
        "auth_unavailable",
        "the key store is unreachable and this key was not seen recently; retry later",
        undefined,
        { "Retry-After": "5" },
      );
    }
    if (r.status === "limited" && r.scope === "client") {
      const message = `too many failed key checks from this address; retry in ${seconds(r.retryAfterMs)} s`;
      throw new HttpError(429, "auth_rate_limited", message, undefined, { "Retry-After": seconds(r.retryAfterMs) });
    }
    if (r.status === "limited") {
      throw new HttpError(
        503,
        "auth_busy",
        "too many keys not seen before are being checked right now; retry later",
        undefined,
        { "Retry-After": seconds(r.retryAfterMs) },
      );
    }
    if (r.status === "unknown")
      throw new HttpError(401, "unauthenticated", "unknown or revoked API key", undefined, {
        "WWW-Authenticate": 'Bearer error="invalid_token"',
      });
    if (r.tenant.status === "suspended")
      throw new HttpError(403, "tenant_suspended", `tenant ${r.tenant.id} is suspended: ${r.tenant.suspendedReason}`);
    if (!kinds.includes(r.kind)) throw new HttpError(403, "key_not_allowed", NOT_ALLOWED[r.kind]);
    c.set("tenant", r.tenant.id);
    c.set("tenantSettings", r.tenant);
    c.set("keyKind", r.kind);
    c.set("device", r.device);
    await next();
  });
}

/** Compares digests, so neither the time taken nor a length difference says anything about the token. */
export function requireAdmin(token: string) {
  const expected = createHash("sha256").update(token).digest();
  return createMiddleware(async function requireAdmin(c, next) {
    const given = createHash("sha256")
      .update(bearer(c.req.header("authorization"), "admin token"))
      .digest();
    if (!timingSafeEqual(given, expected))
      throw new HttpError(401, "unauthenticated", "wrong admin token", undefined, {
        "WWW-Authenticate": 'Bearer error="invalid_token"',
      });
    await next();
  });
}
