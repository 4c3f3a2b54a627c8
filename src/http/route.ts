/**
 * Routes declared once: method, path, auth group, the zod schemas of the request and responses,
 * and the handler. The same declarations are mounted (mountGroup, with the group's auth) and
 * described (openapi/document.ts), so the router and the OpenAPI document cannot disagree.
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import type { z } from "zod";
import type { TenantEnv } from "./auth.ts";
import { notFound } from "./errors.ts";

export type Method = "get" | "post" | "put" | "patch" | "delete";
/** Which group a route belongs to: tenant key (/api/v1), admin token (/admin/v1), or public. */
export type Auth = "tenant" | "admin" | "none";

export interface ResponseSpec {
  description: string;
  /** JSON body; omitted for empty responses (204) or non-JSON ones (give contentType). */
  schema?: z.ZodType;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface Operation {
  method: Method;
  /** Hono-style path, e.g. /api/v1/devices/:id */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  auth: Auth;
  query?: z.ZodObject;
  /** Descriptions of path parameters (every :param is documented, described or not). */
  params?: Record<string, string>;
  /** JSON body by default; or a map of content type -> schema. */
  body?: z.ZodType | Record<string, z.ZodType>;
  responses: Record<number, ResponseSpec>;
}

type EnvOf<A extends Auth> = A extends "tenant" ? TenantEnv : {};

/** An operation with its handler; the handler gets what its module needs (deps) when mounted. */
export interface Route<D = any, A extends Auth = Auth, P extends string = any> extends Operation {
  path: P;
  auth: A;
  /** The path is typed (P), so its parameters are known to the handler. */
  handler: (c: Context<EnvOf<A>, P>, deps: D) => Response | Promise<Response>;
}

/** `const route = routesOf<Deps>()`, then `route({ method, path, ..., handler })`: typed deps and context. */
export const routesOf =
  <D>() =>
  <A extends Auth, P extends string>(r: Route<D, A, P>): Route<D, A, P> =>
    r;

/**
 * One group's routes on one router, each behind the group's auth (none for public routes).
 * Every route must belong to the group, so a route's documented security is the auth it gets.
 */
/**
 * `guarded`: path patterns that the group owns beyond its declared routes (e.g. "/api/v1/devices/*"):
 * a request there that no route takes (another method, an unknown sub-path) still meets the
 * group's auth, then 404 — so without a key the answer is 401 whether or not the route exists.
 */
export function mountGroup<D>(
  auth: Auth,
  guard: MiddlewareHandler<any> | null,
  routes: readonly Route<D>[],
  deps: D,
  guarded: readonly string[] = [],
): Hono {
  if ((auth === "none") !== (guard === null))
    throw new Error(`the ${auth} group needs ${auth === "none" ? "no" : "an"} auth middleware`);
  const app = new Hono();
  for (const r of routes) {
    if (r.auth !== auth) throw new Error(`${r.method} ${r.path} is a ${r.auth} route, mounted in the ${auth} group`);
    const handler = (c: Context) => r.handler(c as never, deps);
    if (guard) app.on(r.method.toUpperCase(), r.path, guard, handler);
    else app.on(r.method.toUpperCase(), r.path, handler);
  }
  // Registered after the routes: reached only when no declared route answered.
  if (guard) for (const pattern of guarded) app.all(pattern, guard, notFound);
  return app;
}

/** Response specs shared by the declarations. */
export const ok = (description: string, schema?: z.ZodType): ResponseSpec => ({
  description,
  ...(schema ? { schema } : {}),
});
export const page = (description: string, content = "text/html"): Record<number, ResponseSpec> => ({
  200: { description, contentType: content },
});
export const retryAfter = { "Retry-After": "seconds to wait before retrying" };
