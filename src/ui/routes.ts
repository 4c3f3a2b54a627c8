/**
 * The dashboard (GET /, /ui/) and the API docs page (GET /docs), served from files embedded in
 * the executable. The pages themselves are public; every datum they show comes from the tenant
 * API with the key the person signs in with.
 */
import { Hono, type Context } from "hono";
import { HttpError } from "../http/errors.ts";
import { docsAssets, pages, uiAssets, type Asset } from "./assets.ts";

/** Scripts only from this server; inline styles for Swagger UI; images may be data: URLs. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

const html = (c: Context, body: string) =>
  c.body(body, 200, { "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CSP, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff" });

const asset = (c: Context, files: Record<string, Asset>) => {
  const file = Object.hasOwn(files, c.req.param("name") ?? "") ? files[c.req.param("name")!] : undefined;
  if (!file) throw new HttpError(404, "not_found", "no such file");
  // no-cache: the browser revalidates (cheap on one server) so an upgrade never serves stale scripts.
  return c.body(file.body, 200, { "Content-Type": file.type, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff" });
};

export function uiRoutes() {
  const app = new Hono();
  app.get("/", (c) => c.redirect("/ui/"));
  app.get("/ui", (c) => c.redirect("/ui/"));
  app.get("/ui/", function dashboardPage(c) {
    return html(c, pages.index);
  });
  app.get("/ui/assets/:name", function dashboardAsset(c) {
    return asset(c, uiAssets);
  });
  app.get("/docs", function docsPage(c) {
    return html(c, pages.docs);
  });
  app.get("/docs/assets/:name", function docsAsset(c) {
    return asset(c, docsAssets);
  });
  return app;
}
