/**
 * /openapi.json: valid OpenAPI 3.1 (@readme/openapi-parser), describes exactly the routes the
 * server's router holds, and real responses of a running server validate against the document's
 * own response schemas (ajv, JSON Schema 2020-12), so the description cannot drift from the code.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { validate } from "@readme/openapi-parser";
import Ajv2020 from "ajv/dist/2020.js";
import { openApiPath } from "../../src/openapi/document.ts";
import { apiClient } from "../helpers/api.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

const ADMIN = "admin-token-openapi-0123456789";
let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let doc: any;

beforeAll(async () => {
  nats = await startNats();
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: await freshDatabase("openapi"),
    TELEMETRY_ADMIN_TOKEN: ADMIN,
  });
  const res = await fetch(`${server.url}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("application/json");
  doc = await res.json();
}, 60_000);

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

test("the document is valid OpenAPI 3.1", async () => {
  expect(doc.openapi).toBe("3.1.0");
  const result = await validate(structuredClone(doc));
  if (!result.valid) console.error(result.errors);
  expect(result).toMatchObject({ valid: true, specification: "OpenAPI" });
});

test("every route of the server is described, and nothing else", () => {
  const routed = new Set(
    server.app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`),
  );
  const described = new Set(
    Object.entries<Record<string, unknown>>(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m} ${path}`),
    ),
  );
  expect(routed.size).toBeGreaterThan(40);
  expect([...routed].filter((r) => !described.has(r)).sort()).toEqual([]);
  expect([...described].filter((r) => !routed.has(r)).sort()).toEqual([]);
});

test("every operation has a summary, an operation id, a success response and the right security", () => {
  for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(ops)) {
      expect(op.summary, `${method} ${path}`).toBeTruthy();
      expect(op.operationId).toMatch(/^[a-z][A-Za-z0-9]+$/);
      expect(Object.keys(op.responses).some((s) => Number(s) < 400)).toBe(true);
      if (path.startsWith("/api/v1/")) expect(op.security).toEqual([{ tenantKey: [] }]);
      if (path.startsWith("/admin/v1/")) expect(op.security).toEqual([{ adminToken: [] }]);
    }
  }
  // the handlers' zod schemas came through: a rule's condition types, the record's strictness
  expect(JSON.stringify(doc.components.schemas.RuleInput)).toContain("deviation_from_mean");
  expect(doc.components.schemas.TelemetryRecord.additionalProperties).toBe(false);
  expect(doc.paths["/api/v1/telemetry"].post.requestBody.content).toHaveProperty(["application/x-ndjson"]);
});

describe("real responses match the documented schemas", () => {
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  const pointer = (s: string) => s.replaceAll("~", "~0").replaceAll("/", "~1");
  let added = false;
  /** Validates a body against the document's schema for (method, path, status). */
  const conforms = (method: string, path: string, status: number, body: unknown) => {
    if (!added) {
      ajv.addSchema({ ...doc, $id: "openapi" });
      added = true;
    }
    expect(doc.paths[path]?.[method]?.responses?.[status], `${method} ${path} ${status} is documented`).toBeDefined();
    const ref = `openapi#/paths/${pointer(path)}/${method}/responses/${status}/content/application~1json/schema`;
    const v = ajv.getSchema(ref) ?? ajv.compile({ $ref: ref });
    expect(v({ unexpected: true }), "a wrong body is refused").toBe(false);
    const ok = v(body);
    if (!ok) console.error(method, path, status, JSON.stringify(v.errors, null, 1), JSON.stringify(body).slice(0, 500));
    expect(ok).toBe(true);
  };

  test("ingest, devices, readings, rollups, rules, alerts, channels, dashboard, admin and errors", async () => {
    const api = apiClient(server);
    const ts = new Date(Date.now() - 60_000).toISOString();
    const ingest = await api.call("POST", "/api/v1/telemetry", [
      { device_id: "d1", ts, location: { lat: 52.5, lon: 13.4 }, metrics: { temp: 91 } },
      { device_id: "bad.id", ts },
    ]);
    conforms("post", "/api/v1/telemetry", ingest.status, ingest.body);
    const invalid = await api.call("POST", "/api/v1/telemetry", [{ device_id: "d1" }]);
    conforms("post", "/api/v1/telemetry", 422, invalid.body);

    const rule = await api.post("/api/v1/rules", {
      name: "hot",
      metric: "temp",
      severity: "critical",
      condition: { type: "above_threshold", threshold: 90 },
    });
    conforms("post", "/api/v1/rules", 201, rule.body);
    await api.ingest([{ device_id: "d1", ts: new Date(Date.now() - 30_000).toISOString(), metrics: { temp: 95 } }]);
    const alerts = await check(
      async () => {
        const r = await api.get("/api/v1/alerts");
        return r.body.alerts.length > 0 && r;
      },
      { what: "an alert", timeoutMs: 30_000 },
    );
    conforms("get", "/api/v1/alerts", 200, alerts.body);
    const id = alerts.body.alerts[0].id;
    conforms("get", "/api/v1/alerts/{id}", 200, (await api.get(`/api/v1/alerts/${id}`)).body);
    conforms("post", "/api/v1/alerts/{id}/acknowledge", 200, (await api.post(`/api/v1/alerts/${id}/acknowledge`)).body);

    conforms("get", "/api/v1/devices", 200, (await api.get("/api/v1/devices")).body);
    conforms("get", "/api/v1/devices/{id}", 200, (await api.get("/api/v1/devices/d1")).body);
    conforms("get", "/api/v1/devices/{id}/readings", 200, (await api.get("/api/v1/devices/d1/readings")).body);
    conforms(
      "get",
      "/api/v1/devices/{id}/metrics/{metric}",
      200,
      (await api.get("/api/v1/devices/d1/metrics/temp?bucket=5m")).body,
    );
    conforms("get", "/api/v1/rules", 200, (await api.get("/api/v1/rules")).body);
    conforms("post", "/api/v1/rules/{id}/disable", 200, (await api.post(`/api/v1/rules/${rule.body.id}/disable`)).body);

    const channel = await api.post("/api/v1/channels", {
      name: "ops",
      kind: "webhook",
      url: "https://hooks.example.com/hook",
    });
    conforms("post", "/api/v1/channels", 201, channel.body);
    const blocked = await api.post("/api/v1/channels", {
      name: "metadata",
      kind: "webhook",
      url: "http://169.254.169.254/latest",
    });
    expect(blocked.body.error.code).toBe("blocked_address");
    conforms("post", "/api/v1/channels", 422, blocked.body);
    expect(doc.paths["/api/v1/channels"].post.responses[422].description).toContain("blocked_address");
    conforms("get", "/api/v1/channels", 200, (await api.get("/api/v1/channels")).body);
    conforms(
      "get",
      "/api/v1/channels/{id}/deliveries",
      200,
      (await api.get(`/api/v1/channels/${channel.body.id}/deliveries`)).body,
    );

    const stats = (await api.get("/api/v1/dashboard/stats")).body;
    conforms("get", "/api/v1/dashboard/stats", 200, stats);
    expect(stats).toMatchObject({ tenant: "acme", devices: 1, rules: 1, open_alerts: 1 });
    const devices = (await api.get("/api/v1/dashboard/devices")).body;
    conforms("get", "/api/v1/dashboard/devices", 200, devices);
    expect(devices.rows).toEqual([["d1", expect.any(Number), 52.5, 13.4]]);
    const latest = (await api.get("/api/v1/dashboard/latest?devices=d1,unknown")).body;
    conforms("get", "/api/v1/dashboard/latest", 200, latest);
    expect(latest.latest).toEqual({ d1: { ts: expect.any(String), metrics: { temp: 95 } } });

    const admin = apiClient(server, ADMIN);
    conforms("post", "/admin/v1/tenants", 201, (await admin.post("/admin/v1/tenants", { id: "gamma" })).body);
    conforms(
      "post",
      "/admin/v1/tenants/{id}/keys",
      201,
      (await admin.post("/admin/v1/tenants/gamma/keys", { name: "k" })).body,
    );
    conforms("get", "/admin/v1/tenants/{id}/keys", 200, (await admin.get("/admin/v1/tenants/gamma/keys")).body);
    conforms("get", "/admin/v1/tenants", 200, (await admin.get("/admin/v1/tenants")).body);

    const notFound = await api.get("/api/v1/devices/nope");
    conforms("get", "/api/v1/devices/{id}", 404, notFound.body);
    const badQuery = await api.get("/api/v1/alerts?severity=loud");
    conforms("get", "/api/v1/alerts", 400, badQuery.body);
    const badRule = await api.post("/api/v1/rules", { name: "", condition: { type: "above_threshold" } });
    conforms("post", "/api/v1/rules", 422, badRule.body);
    const unauth = await apiClient(server, "wrong-key-0123456789").get("/api/v1/rules");
    conforms("get", "/api/v1/rules", 401, unauth.body);
  }, 60_000);

  test("body errors (encoding, UTF-8, size) are documented per route and conform", async () => {
    const raw = async (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.url}${path}`, {
        method: "POST",
        body,
        headers: { authorization: `Bearer ${TEST_KEY}`, "content-type": "application/json", ...headers },
      });
      return { status: res.status, body: (await res.json()) as { error: { code: string } } };
    };
    for (const path of ["/api/v1/telemetry", "/api/v1/rules"]) {
      const cases = [
        [415, "unsupported_encoding", await raw(path, "{}", { "content-encoding": "br" })],
        [400, "invalid_utf8", await raw(path, new Uint8Array([0x7b, 0xff, 0x7d]))],
        [400, "invalid_encoding", await raw(path, "{}", { "content-encoding": "gzip" })],
        [413, "body_too_large", await raw(path, "x".repeat(3 << 20))],
      ] as const;
      for (const [status, code, res] of cases) {
        expect([res.status, res.body.error.code]).toEqual([status, code]);
        conforms("post", path, status, res.body);
      }
    }
  });
});

test("the docs page and the dashboard are served from the executable's embedded files", async () => {
  const docs = await fetch(`${server.url}/docs`);
  expect(docs.status).toBe(200);
  expect(docs.headers.get("content-security-policy")).toContain("script-src 'self'");
  const html = await docs.text();
  expect(html).toContain("/docs/assets/swagger-ui-bundle.js");
  const bundle = await fetch(`${server.url}/docs/assets/swagger-ui-bundle.js`);
  expect(bundle.headers.get("content-type")).toContain("javascript");
  expect((await bundle.text()).length).toBeGreaterThan(500_000);
  expect((await fetch(`${server.url}/docs/assets/nope.js`)).status).toBe(404);
  const root = await fetch(`${server.url}/`, { redirect: "manual" });
  expect([root.status, root.headers.get("location")]).toEqual([302, "/ui/"]);
  expect(await (await fetch(`${server.url}/ui/`)).text()).toContain("/ui/assets/app.js");
  expect((await fetch(`${server.url}/ui/assets/charts.js`)).status).toBe(200);
  expect((await fetch(`${server.url}/ui/assets/constructor`)).status).toBe(404);
});
