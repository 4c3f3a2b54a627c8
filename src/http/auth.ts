/**
 * Tenant authentication: `Authorization: Bearer <key>`. Keys are held only as SHA-256 digests;
 * the lookup is by digest, so the time taken says nothing about how much of a key was right.
 */
import { createHash } from "node:crypto";
import { createMiddleware } from "hono/factory";
import { HttpError } from "./errors.ts";

export type TenantEnv = { Variables: { tenant: string } };

export function keyDigest(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** Resolves a key digest to its tenant, or undefined. */
export type KeyResolver = (digest: string) => string | undefined;

export function staticKeys(entries: ReadonlyArray<{ tenant: string; digest: string }>): KeyResolver {
  const map = new Map(entries.map((e) => [e.digest, e.tenant]));
  return (digest) => map.get(digest);
}

export function requireTenant(resolve: KeyResolver) {
  return createMiddleware<TenantEnv>(async function requireTenant(c, next) {
    const header = c.req.header("authorization");
    if (!header) throw new HttpError(401, "unauthenticated", "missing Authorization: Bearer <api key>", undefined, { "WWW-Authenticate": "Bearer" });
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new HttpError(401, "unauthenticated", "Authorization header must be 'Bearer <api key>'", undefined, { "WWW-Authenticate": "Bearer" });
    const tenant = resolve(keyDigest(m[1]!));
    if (!tenant) throw new HttpError(401, "unauthenticated", "unknown API key", undefined, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
    c.set("tenant", tenant);
    await next();
  });
}
