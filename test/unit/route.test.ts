/** http/route.ts: a group mounts only its own routes, each behind the group's auth; declarations carry the OpenAPI metadata. */
import { describe, expect, test } from "bun:test";
import { createMiddleware } from "hono/factory";
import { buildApp } from "../../src/http/app.ts";
import { HttpError } from "../../src/http/errors.ts";
import { mountGroup, ok, routesOf } from "../../src/http/route.ts";
import { ALL_ROUTES } from "../../src/server/surface.ts";

const route = routesOf<{ greeting: string }>();
const hello = route({
  method: "get",
  path: "/api/v1/hello/:name",
  tag: "test",
  summary: "Greets",
  auth: "tenant",
  responses: { 200: ok("a greeting") },
  handler: (c, { greeting }) => c.json({ text: `${greeting} ${c.req.param("name")}`, tenant: c.get("tenant") }),
});
const open = route({
  method: "get",
  path: "/open",
  tag: "test",
  summary: "Public",
  auth: "none",
  responses: { 200: ok("hi") },
  handler: (c) => c.text("hi"),
});

const guard = createMiddleware(async (c, next) => {
  if (c.req.header("authorization") !== "Bearer k") throw new HttpError(401, "unauthenticated", "no");
  c.set("tenant", "acme");
  await next();
});

describe("mountGroup", () => {
  test("each route runs behind the group's auth, with the deps it was mounted with", async () => {
    const app = buildApp([mountGroup("tenant", guard, [hello], { greeting: "hello" })], [], () => false);
    const denied = await app.request("/api/v1/hello/ann");
    expect([denied.status, ((await denied.json()) as any).error.code]).toEqual([401, "unauthenticated"]);
    const res = await app.request("/api/v1/hello/ann", { headers: { authorization: "Bearer k" } });
    expect([res.status, await res.json()]).toEqual([200, { text: "hello ann", tenant: "acme" }]);
    expect(
      (await app.request("/api/v1/hello/ann", { method: "POST", headers: { authorization: "Bearer k" } })).status,
    ).toBe(404);
  });

  test("a guarded pattern's undeclared methods and sub-paths meet the auth before their 404", async () => {
    const app = buildApp(
      [mountGroup("tenant", guard, [hello], { greeting: "hi" }, ["/api/v1/hello/*"])],
      [],
      () => false,
    );
    for (const [method, path] of [
      ["PUT", "/api/v1/hello/ann"],
      ["OPTIONS", "/api/v1/hello/ann"],
      ["GET", "/api/v1/hello/ann/more"],
    ] as const) {
      expect((await app.request(path, { method })).status).toBe(401);
      const known = await app.request(path, { method, headers: { authorization: "Bearer k" } });
      expect([known.status, ((await known.json()) as any).error.code]).toEqual([404, "not_found"]);
    }
    expect((await app.request("/api/v1/hello/ann", { headers: { authorization: "Bearer k" } })).status).toBe(200); // the route itself answers
    expect((await app.request("/api/v1/other")).status).toBe(404); // outside the patterns: no auth involved
  });

  test("a route of another group, or a group without (or with a needless) auth, is refused at mount", () => {
    expect(() => mountGroup("admin", guard, [hello], { greeting: "" })).toThrow(
      "is a tenant route, mounted in the admin group",
    );
    expect(() => mountGroup("none", null, [hello], { greeting: "" })).toThrow("is a tenant route");
    expect(() => mountGroup("tenant", null, [hello], { greeting: "" })).toThrow("needs an auth middleware");
    expect(() => mountGroup("none", guard, [open], { greeting: "" })).toThrow("needs no auth middleware");
    expect(mountGroup("none", null, [open], { greeting: "" }).routes.map((r) => `${r.method} ${r.path}`)).toEqual([
      "GET /open",
    ]);
  });
});

/** Tenant routes outside /api/v1: where InfluxDB clients write (their paths are InfluxDB's). */
const INFLUX_TENANT_PATHS = new Set(["/api/v2/write", "/write", "/api/v3/write_lp", "/query"]);

test("every declared route is unique and in the group its path says", () => {
  const keys = ALL_ROUTES.map((r) => `${r.method} ${r.path}`);
  expect(new Set(keys).size).toBe(keys.length);
  // Device protocols whose clients cannot send a Bearer header (OsmAnd, OwnTracks): a tenant key outside /api/v1.
  const tenantPath = (p: string) => p.startsWith("/api/v1/") || /^\/(osmand|owntracks)(\/|$)/.test(p);
  for (const r of ALL_ROUTES) {
    const expected =
      tenantPath(r.path) || INFLUX_TENANT_PATHS.has(r.path)
        ? "tenant"
        : r.path.startsWith("/admin/v1/")
          ? "admin"
          : "none";
    expect(`${r.method} ${r.path} ${r.auth}`).toBe(`${r.method} ${r.path} ${expected}`);
  }
});
