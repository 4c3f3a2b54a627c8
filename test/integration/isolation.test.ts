/**
 * T8: a tenant's key never reads or writes another tenant's data, on every route the app serves
 * (enumerated from the app, so a new route must be covered here); and the limits: body size
 * (413), records per request, rate limits (429 with Retry-After), device policy and device cap.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { apiClient } from "../helpers/api.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { OTHER_KEY, post, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

const ADMIN = "admin-token-0123456789abcdef";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;

beforeAll(async () => {
  nats = await startNats();
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: await freshDatabase("isolation"),
    TELEMETRY_ADMIN_TOKEN: ADMIN,
    TELEMETRY_MAX_BODY: "64KiB",
  });
}, 60_000);

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const a = () => apiClient(server, TEST_KEY); // tenant acme
const b = () => apiClient(server, OTHER_KEY); // tenant beta
const rule = {
  name: "hot",
  metric: "temp",
  severity: "critical",
  condition: { type: "above_threshold", threshold: 30 },
};
/** Everything that must never show up in an answer to beta. */
const SECRET_DEVICE = "acme-secret-device";
const SECRET_VALUE = 42.424242;

/** Every array in the body is empty (a list of another tenant's anything). */
const onlyEmptyLists = (body: unknown): boolean =>
  Array.isArray(body)
    ? body.length === 0
    : typeof body === "object" && body !== null
      ? Object.values(body).every((v) => typeof v !== "object" || v === null || onlyEmptyLists(v))
      : true;

/** The first events of beta's live stream, as text. */
async function streamStart(path: string): Promise<string> {
  const abort = new AbortController();
  const res = await fetch(`${server.url}${path}`, {
    headers: { authorization: `Bearer ${OTHER_KEY}` },
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("event: open")) text += (await reader.read()).value ?? "";
  abort.abort();
  return text;
}

test("another tenant's key gets 404 or an empty list on every route, and changes nothing", async () => {
  // Tenant acme: a device with readings, a rule, an alert, a channel.
  await a().ingest([{ device_id: SECRET_DEVICE, ts: BASE_TS, metrics: { temp: SECRET_VALUE } }]);
  const ruleId = (await a().createRule(rule)).id;
  await a().ingest([{ device_id: SECRET_DEVICE, ts: BASE_TS + 60_000, metrics: { temp: SECRET_VALUE } }]);
  const [alert] = await check(async () => (await a().alerts()).length === 1 && a().alerts(), {
    what: "acme's alert",
    timeoutMs: 30_000,
  });
  // The alert may come from the first reading before the writer has stored the second: wait for both.
  await check(async () => (await a().get(`/api/v1/devices/${SECRET_DEVICE}/readings`)).body.readings.length === 2, {
    what: "both of acme's readings stored",
    timeoutMs: 30_000,
  });
  const channel = await a().post("/api/v1/channels", {
    name: "ops",
    kind: "webhook",
    url: "https://hooks.example.com/acme",
    enabled: false,
  });
  expect(channel.status).toBe(201);
  const deviceKey = await a().post(`/api/v1/devices/${SECRET_DEVICE}/keys`, { name: "acme's tracker" });
  expect(deviceKey.status).toBe(201);
  const route = await a().post("/api/v1/routes", {
    name: "acme-route",
    filter: { devices: [SECRET_DEVICE] },
    destination: { type: "nats" },
  });
  expect(route.status).toBe(201);
  const ids: Record<string, string> = {
    routes: route.body.id,
    devices: SECRET_DEVICE,
    rules: ruleId,
    alerts: alert.id,
    channels: channel.body.id,
  };
  const secrets = [
    SECRET_DEVICE,
    String(SECRET_VALUE),
    ruleId,
    alert.id,
    channel.body.id,
    deviceKey.body.id,
    deviceKey.body.prefix,
    route.body.id,
  ];
  const before = JSON.stringify([
    await a().get(`/api/v1/devices/${SECRET_DEVICE}/readings`),
    await a().get(`/api/v1/rules/${ruleId}`),
    await a().get(`/api/v1/alerts/${alert.id}`),
    await a().get(`/api/v1/channels/${channel.body.id}`),
    await a().get(`/api/v1/devices/${SECRET_DEVICE}/keys`),
    await a().get(`/api/v1/routes/${route.body.id}`),
  ]);

  const routes = [
    ...new Map(
      server.app.routes
        .filter((r) => r.method !== "ALL" && r.path.startsWith("/api/"))
        .map((r) => [`${r.method} ${r.path}`, r]),
    ).values(),
  ];
  const bodies: Record<string, unknown> = {
    "POST /api/v1/telemetry": [{ device_id: SECRET_DEVICE, ts: BASE_TS + 120_000, metrics: { temp: 1 } }],
    "POST /api/v1/rules": rule,
    "PUT /api/v1/rules/:id": { ...rule, name: "stolen" },
    "PATCH /api/v1/rules/:id": { name: "stolen" },
    "POST /api/v1/channels": {
      name: "beta-ops",
      kind: "webhook",
      url: "https://hooks.example.com/beta",
      enabled: false,
    },
    "PATCH /api/v1/channels/:id": { name: "stolen" },
    "POST /api/v1/devices": { device_id: SECRET_DEVICE },
    "POST /api/v1/routes": { name: "acme-route", filter: {}, destination: { type: "nats" } },
  };
  /** Routes answering other than JSON: asked for a form this client parses (empty NDJSON is no body). */
  const queries: Record<string, string> = { "GET /api/v1/readings/export": "?format=ndjson" };
  // Reads first, then changes to acme's ids, then creations (which act on beta's own data).
  // A device's id names it within its tenant: creating a key for device X with beta's key is beta's own X.
  const creation = (r: { method: string; path: string }) =>
    !r.path.includes(":") || (r.method === "POST" && r.path === "/api/v1/devices/:id/keys");
  const rank = (r: { method: string; path: string }) => (r.method === "GET" ? 0 : creation(r) ? 2 : 1);
  routes.sort((x, y) => rank(x) - rank(y));
  expect(routes.length).toBeGreaterThanOrEqual(20);
  // The line-protocol writes take text: acme's device id written with beta's key is beta's own device.
  const lineProtocol = new Set(["/api/v2/write", "/api/v3/write_lp"]);
  const writeLines = async (path: string) => {
    const res = await fetch(`${server.url}${path}?precision=ms`, {
      method: "POST",
      headers: { authorization: `Token ${OTHER_KEY}` },
      body: `m,device=${SECRET_DEVICE} temp=1 ${BASE_TS + 180_000}`,
    });
    const text = await res.text();
    return { status: res.status === 204 ? 202 : res.status, body: text ? JSON.parse(text) : null };
  };
  for (const r of routes) {
    const path =
      r.path
        .replace(":id", ids[r.path.split("/")[3]!] ?? ":id")
        .replace(":metric", "temp")
        .replace(":key", deviceKey.body.id) + (queries[`${r.method} ${r.path}`] ?? "");
    expect(path, `${r.method} ${r.path}: a parameter this test does not know`).not.toContain(":");
    if (path === "/api/v1/stream") {
      // Never ends by itself: its start (up to the open event) must hold nothing of acme's.
      const text = await streamStart(path);
      for (const s of secrets) expect(text).not.toContain(s);
      continue;
    }
    const res = lineProtocol.has(r.path)
      ? await writeLines(path)
      : await b().call(
          r.method,
          path,
          bodies[`${r.method} ${r.path}`] ?? (r.method === "GET" || r.method === "DELETE" ? undefined : {}),
        );
    const what = `${r.method} ${path} -> ${res.status} ${JSON.stringify(res.body)}`;
    // Only a provisioning token may provision (device-keys.test.ts); a tenant key is refused there.
    if (r.path === "/api/v1/provision") expect(res.body?.error?.code, what).toBe("key_not_allowed");
    else if (rank(r) === 1) expect(res.status, what).toBe(404);
    else if (r.path.includes(":") && rank(r) !== 2)
      expect(res.status === 404 || (res.status === 200 && onlyEmptyLists(res.body)), what).toBe(true);
    else expect([200, 201, 202], what).toContain(res.status);
    // A route with acme's device id in it may echo the id; nothing else of acme's may show.
    if (rank(r) !== 2)
      for (const s of r.path.includes(":") ? secrets.slice(1) : secrets)
        expect(JSON.stringify(res.body), what).not.toContain(s);
  }

  const after = JSON.stringify([
    await a().get(`/api/v1/devices/${SECRET_DEVICE}/readings`),
    await a().get(`/api/v1/rules/${ruleId}`),
    await a().get(`/api/v1/alerts/${alert.id}`),
    await a().get(`/api/v1/channels/${channel.body.id}`),
    await a().get(`/api/v1/devices/${SECRET_DEVICE}/keys`),
    await a().get(`/api/v1/routes/${route.body.id}`),
  ]);
  expect(after).toBe(before);
  // Beta's own device of the same name is beta's: acme's stays as it was.
  expect((await a().get(`/api/v1/devices/${SECRET_DEVICE}`)).status).toBe(200);
}, 60_000);

describe("limits", () => {
  const admin = () => apiClient(server, ADMIN);
  const tenantWithKey = async (id: string, settings: Record<string, unknown>) => {
    expect((await admin().post("/admin/v1/tenants", { id, ...settings })).status).toBe(201);
    return (await admin().post(`/admin/v1/tenants/${id}/keys`, {})).body.key as string;
  };
  let seq = 0;
  const records = (devices: string[]) =>
    devices.map((device_id) => ({ device_id, ts: BASE_TS + ++seq, metrics: { v: 1 } }));

  test("an oversize body gets 413 after the key is checked (401 first)", async () => {
    const big = [{ device_id: "d", ts: BASE_TS, metrics: { v: 1 }, attributes: { pad: "x".repeat(70_000) } }];
    expect((await post(server, big)).body.error.code).toBe("body_too_large");
    expect((await post(server, big, { key: "tk_unknown-0123456789abcdef" })).status).toBe(401);
  });

  test("records per request are limited per tenant", async () => {
    const key = await tenantWithKey("small", { limits: { max_records_per_request: 5 } });
    expect((await post(server, records(["a", "b", "c", "d", "e"]), { key })).status).toBe(202);
    const res = await post(server, records(["a", "b", "c", "d", "e", "f"]), { key });
    expect(res.status).toBe(413);
    expect(res.body.error).toEqual({ code: "too_many_records", message: "a request may hold at most 5 records" });
  });

  test("a burst over the tenant's limit gets 429 with Retry-After; a request larger than the burst passes once and leaves a debt", async () => {
    const key = await tenantWithKey("tiny", { limits: { rate_per_second: 1, burst: 10 } });
    const devices = Array.from({ length: 25 }, (_, i) => `t-${i}`);
    expect((await post(server, records(devices), { key })).body.accepted).toBe(25); // 10 tokens, 15 owed
    const res = await post(server, records(["t-0"]), { key });
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe("rate_limited");
    expect(res.body.error.message).toContain("tenant tiny is over its rate limit (1 records/s, burst 10)");
    expect(res.headers.get("retry-after")).toBe("16");
  });

  test("a device over its limit: its extra records are rejected one by one; 429 when nothing is left", async () => {
    const key = await tenantWithKey("devlim", { limits: { device_rate_per_second: 0.1, device_burst: 3 } });
    const first = await post(server, records(["d", "d", "d", "d", "d", "e"]), { key });
    expect(first.status).toBe(202);
    expect(first.body.results.map((r: { status: string }) => r.status)).toEqual([
      "accepted",
      "accepted",
      "accepted",
      "rejected",
      "rejected",
      "accepted",
    ]);
    expect(first.body.results[3].errors).toEqual([
      {
        path: "device_id",
        code: "rate_limited",
        message: "device rate limit (0.1 records/s, burst 3) reached; retry in 10 s",
      },
    ]);
    const res = await post(server, records(["d", "d"]), { key });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("10");
    expect((await post(server, records(["e"]), { key })).status).toBe(202);
  });

  test("device policy reject: unknown devices are refused until registered", async () => {
    const key = await tenantWithKey("strict", { device_policy: "reject" });
    const api = apiClient(server, key);
    const refused = await post(server, records(["r1"]), { key });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("unknown_device");
    expect((await api.post("/api/v1/devices", { device_id: "bad.id" })).status).toBe(422);
    expect((await api.post("/api/v1/devices", { device_id: "r1" })).status).toBe(201);
    expect((await api.post("/api/v1/devices", { device_id: "r1" })).status).toBe(200);
    const mixed = await post(server, records(["r1", "r2"]), { key });
    expect(mixed.status).toBe(202);
    expect(mixed.body.results[1].errors[0]).toEqual({
      path: "device_id",
      code: "unknown_device",
      message: "unknown device; register it first (POST /api/v1/devices)",
    });
    expect((await api.del("/api/v1/devices/r1")).status).toBe(204);
    expect((await api.del("/api/v1/devices/r1")).status).toBe(404);
    expect((await post(server, records(["r1"]), { key })).status).toBe(403);
  });

  test("device policy auto: new devices up to max_devices, then refused; deleting one frees a place", async () => {
    const key = await tenantWithKey("capped", { limits: { max_devices: 2 } });
    const api = apiClient(server, key);
    expect((await post(server, records(["c1", "c2"]), { key })).body.accepted).toBe(2);
    const full = await post(server, records(["c3"]), { key });
    expect(full.status).toBe(403);
    expect(full.body.error.code).toBe("device_limit");
    const mixed = await post(server, records(["c1", "c3"]), { key });
    expect(mixed.body.results[1].errors[0]).toEqual({
      path: "device_id",
      code: "device_limit",
      message: "tenant device limit (2) reached",
    });
    await check(async () => (await api.get("/api/v1/devices")).body.devices.length === 2, { what: "c1 and c2 stored" });
    expect((await api.post("/api/v1/devices", { device_id: "c4" })).body.error.code).toBe("device_limit");
    expect((await api.del("/api/v1/devices/c1")).status).toBe(204);
    expect((await post(server, records(["c3"]), { key })).body.accepted).toBe(1);
  });
});
