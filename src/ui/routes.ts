/**
 * The dashboard (GET /, /ui/) and the API docs page (GET /docs), served from files embedded in
 * the executable. The pages themselves are public; every datum they show comes from the tenant
 * API with the key the person signs in with.
 */
import type { Context } from "hono";
import { z } from "zod";
import type { TileSource } from "../core/map-tiles.ts";
import { HttpError } from "../http/errors.ts";
import { ok, page, routesOf } from "../http/route.ts";
import { err } from "../openapi/views.ts";
import { docsAssets, pages, uiAssets, type Asset } from "./assets.ts";

/** The dashboard map's tiles (settings TELEMETRY_MAP_*). */
export interface MapSettings {
  tiles: TileSource;
  attribution: string;
  attributionUrl: string;
  maxZoom: number;
}
export interface UiDeps {
  map: MapSettings;
}

/**
 * Scripts only from this server; inline styles for Swagger UI and Leaflet; images may be data:
 * URLs, and the map's tiles come from the tile server's origin.
 */
const csp = (tiles = "") =>
  `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:${tiles && tiles !== "'self'" ? ` ${tiles}` : ""}; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'`;

export const mapSettingsSchema = z
  .object({
    tile_url: z
      .string()
      .meta({ description: "Leaflet URL template, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png" }),
    attribution: z.string().meta({ description: "plain text" }),
    attribution_url: z.string().meta({ description: "empty: no link" }),
    max_zoom: z.number().int(),
  })
  .meta({ id: "MapSettings" });

const html = (c: Context, body: string, tiles?: string) =>
  c.body(body, 200, {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": csp(tiles),
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

const route = routesOf<UiDeps>();
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
    handler: function dashboardPage(c, { map }) {
      return html(c, pages.index, map.tiles.cspSource);
    },
  }),
  route({
    method: "get",
    path: "/ui/map.json",
    tag: "dashboard",
    summary: "The dashboard map's tile server and attribution (settings TELEMETRY_MAP_*)",
    auth: "none",
    responses: { 200: ok("the tile URL template, attribution and deepest zoom", mapSettingsSchema) },
    handler: function mapSettings(c, { map }) {
      const body: z.output<typeof mapSettingsSchema> = {
        tile_url: map.tiles.template,
        attribution: map.attribution,
        attribution_url: map.attributionUrl,
        max_zoom: map.maxZoom,
      };
      return c.json(body, 200, { "Cache-Control": "no-cache" });
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
