/**
 * The dashboard (GET /, /ui/) and the API docs page (GET /docs), served from files embedded in
 * the executable. The pages themselves are public; every datum they show comes from the tenant
 * API with the key the person signs in with.
 */
import type { Context } from "hono";
import { HttpError } from "../http/errors.ts";
import { ok, page, routesOf } from "../http/route.ts";
import { err } from "../openapi/views.ts";
import { docsAssets, pages, uiAssets, type Asset } from "./assets.ts";

/** Scripts only from this server; inline styles for Swagger UI; images may be data: URLs. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

const html = (c: Context, body: string) =>
  c.body(body, 200, {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
  });

const asset = (c: Context, files: Record<string, Asset>) => {
  const file = Object.hasOwn(files, c.req.param("name") ?? "") ? files[c.req.param("name")!] : undefined;
  if (!file) throw new HttpError(404, "not_found", "no such file");
  // no-cache: the browser revalidates (cheap on one server) so an upgrade never serves stale scripts.
  return c.body(file.body, 200, {
    "Content-Type": file.type,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
  });
};

const route = routesOf<unknown>();
const files = { ...page("JavaScript or CSS", "text/javascript"), 404: err("no such file") };

/** In the order the API description lists them: the docs page, then the dashboard. */
export const uiRoutes = [
  route({
    method: "get",
    path: "/docs",
    tag: "service",
    summary: "API documentation page (Swagger UI over /openapi.json)",
    auth: "none",
    responses: page("HTML"),
    handler: function docsPage(c) {
      return html(c, pages.docs);
    },
  }),
  route({
    method: "get",
    path: "/docs/assets/:name",
    tag: "service",
    summary: "Files of the documentation page",
    auth: "none",
    responses: files,
    handler: function docsAsset(c) {
      return asset(c, docsAssets);
    },
  }),
  route({
    method: "get",
    path: "/",
    tag: "dashboard",
    summary: "Redirects to the dashboard",
    auth: "none",
    responses: { 302: ok("to /ui/") },
    handler: (c) => c.redirect("/ui/"),
  }),
  route({
    method: "get",
    path: "/ui",
    tag: "dashboard",
    summary: "Redirects to the dashboard",
    auth: "none",
    responses: { 302: ok("to /ui/") },
    handler: (c) => c.redirect("/ui/"),
  }),
  route({
    method: "get",
    path: "/ui/",
    tag: "dashboard",
    summary: "The dashboard (sign in with a tenant key)",
    auth: "none",
    responses: page("HTML"),
    handler: function dashboardPage(c) {
      return html(c, pages.index);
    },
  }),
  route({
    method: "get",
    path: "/ui/assets/:name",
    tag: "dashboard",
    summary: "Files of the dashboard",
    auth: "none",
    responses: files,
    handler: function dashboardAsset(c) {
      return asset(c, uiAssets);
    },
  }),
];
