/** Bad input gets a specific 4xx and publishes nothing; a broker outage gets 503, never 202. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { post, startTestServer, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNats();
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: await freshDatabase("bad"),
    TELEMETRY_MAX_BODY: "64KiB",
    TELEMETRY_MAX_RECORDS: "100",
    TELEMETRY_ROLES: "ingest,api",
  });
  nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const storedMessages = async () => (await (await jetstreamManager(nc)).streams.info("TELEMETRY")).state.messages;
const good = { device_id: "ok-1", ts: BASE_TS, metrics: { t: 1 } };

describe("bad input", () => {
  // Rows have all five fields: bun passes a done-callback for missing trailing parameters.
  const cases: Array<[string, { body: string; contentType?: string; key?: string | null }, number, string, string]> = [
    ["malformed JSON", { body: '{"device_id": "x",' }, 400, "invalid_json", ""],
    [
      "NaN literal",
      { body: '{"device_id":"x","ts":1767225600000,"metrics":{"t":NaN}}' },
      400,
      "invalid_json",
      "NaN and Infinity",
    ],
    ["a JSON scalar", { body: "42" }, 400, "invalid_body", ""],
    ["an empty body", { body: "" }, 400, "empty_body", ""],
    ["an empty array", { body: "[]" }, 400, "empty_body", ""],
    ["blank NDJSON", { body: "\n\n", contentType: "application/x-ndjson" }, 400, "empty_body", ""],
    [
      "wrong content type",
      { body: JSON.stringify(good), contentType: "text/plain" },
      415,
      "unsupported_media_type",
      "",
    ],
    ["no content type", { body: JSON.stringify(good), contentType: "" }, 415, "unsupported_media_type", ""],
    ["no API key", { body: JSON.stringify(good), key: null }, 401, "unauthenticated", "missing"],
    [
      "an unknown API key",
      { body: JSON.stringify(good), key: "nope-nope-nope-nope" },
      401,
      "unauthenticated",
      "unknown",
    ],
    [
      "too many records",
      { body: JSON.stringify(Array.from({ length: 101 }, (_, i) => ({ ...good, ts: BASE_TS + i }))) },
      413,
      "too_many_records",
      "",
    ],
    [
      "an oversize body",
      { body: JSON.stringify({ ...good, attributes: { pad: "x".repeat(70_000) } }) },
      413,
      "body_too_large",
      "",
    ],
  ];

  test.each(cases)("%s -> specific error, nothing published", async (_, req, status, code, fragment) => {
    const before = await storedMessages();
    const headers: Record<string, string> = {};
    if (req.contentType !== "") headers["content-type"] = req.contentType ?? "application/json";
    if (req.key !== null) headers.authorization = `Bearer ${req.key ?? "test-key-acme-0123456789"}`;
    const res = await fetch(`${server.url}/api/v1/telemetry`, { method: "POST", headers, body: req.body });
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status).toBe(status);
    expect(body.error.code).toBe(code);
    if (fragment) expect(body.error.message).toContain(fragment);
    expect(await storedMessages()).toBe(before);
  });

  const invalidRecords: Array<[string, unknown, string, string]> = [
    ["missing device_id", { ts: BASE_TS, metrics: { t: 1 } }, "device_id", "required"],
    ["missing ts", { device_id: "d", metrics: { t: 1 } }, "ts", "required"],
    ["no location and no metrics", { device_id: "d", ts: BASE_TS }, "", "location or at least one metric"],
    ["Infinity (1e999)", '{"device_id":"d","ts":1767225600000,"metrics":{"t":1e999}}', "metrics.t", "finite"],
    [
      "latitude out of range",
      { device_id: "d", ts: BASE_TS, location: { lat: -90.5, lon: 0 } },
      "location.lat",
      "between -90 and 90",
    ],
    [
      "longitude out of range",
      { device_id: "d", ts: BASE_TS, location: { lat: 0, lon: 181 } },
      "location.lon",
      "between -180 and 180",
    ],
    ["timestamp in 1970", { device_id: "d", ts: 0, metrics: { t: 1 } }, "ts", "before 2000"],
    ["timestamp in 2999", { device_id: "d", ts: "2999-01-01T00:00:00Z", metrics: { t: 1 } }, "ts", "in the future"],
    ["device id with '.'", { device_id: "a.b", ts: BASE_TS, metrics: { t: 1 } }, "device_id", "'.'"],
    ["device id with '*'", { device_id: "a*", ts: BASE_TS, metrics: { t: 1 } }, "device_id", "'*'"],
    ["device id with '>'", { device_id: ">", ts: BASE_TS, metrics: { t: 1 } }, "device_id", "'>'"],
    ["device id with a space", { device_id: "a b", ts: BASE_TS, metrics: { t: 1 } }, "device_id", "whitespace"],
    ["non-ASCII device id", { device_id: "gerät", ts: BASE_TS, metrics: { t: 1 } }, "device_id", "ASCII"],
  ];

  test.each(invalidRecords)(
    "%s -> 422 with index, path and message; nothing published",
    async (_, record, path, fragment) => {
      const before = await storedMessages();
      const body = typeof record === "string" ? record : JSON.stringify(record);
      const res = await post(server, body, { raw: true });
      expect(res.status).toBe(422);
      expect(res.body.accepted).toBe(0);
      expect(res.body.rejected).toBe(1);
      const [result] = res.body.results;
      expect(result.index).toBe(0);
      expect(result.status).toBe("rejected");
      const err = result.errors.find((e: { path: string }) => e.path === path);
      expect(err?.message).toContain(fragment);
      expect(await storedMessages()).toBe(before);
    },
  );

  test("a bad NDJSON line rejects only that record", async () => {
    const body = `${JSON.stringify(good)}\n{oops\n${JSON.stringify({ ...good, ts: BASE_TS + 1 })}\n`;
    const res = await post(server, body, { raw: true, contentType: "application/x-ndjson" });
    expect(res.status).toBe(202);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(["accepted", "rejected", "accepted"]);
    expect(res.body.results[1].errors[0].message).toContain("line 2");
  });
});

describe("broker outage", () => {
  test("answers 503 (never 202) while nats-server is down, and /ready says so; recovers after", async () => {
    await nats.kill();
    try {
      await check(async () => (await fetch(`${server.url}/ready`)).status === 503, { what: "/ready 503" });
      for (let i = 0; i < 5; i++) {
        const res = await post(server, { ...good, device_id: "outage", ts: BASE_TS + i });
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe("broker_unavailable");
        expect(res.headers.get("retry-after")).toBe("1");
      }
    } finally {
      await nats.start();
    }
    await check(async () => (await fetch(`${server.url}/ready`)).status === 200, {
      what: "/ready 200",
      timeoutMs: 30_000,
    });
    const res = await post(server, { ...good, device_id: "outage", ts: BASE_TS });
    expect(res.status).toBe(202);
  });
});
