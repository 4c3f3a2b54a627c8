/**
 * The tracker endpoints against a real server (nats-server, PostgreSQL, the writer): OsmAnd
 * requests as Traccar's documentation and decoder describe them (GET query, the Android client's
 * POST with the query and an empty body, a form body, Traccar Client 9's JSON body), on the HTTP
 * port and on TELEMETRY_OSMAND_PORT; OwnTracks HTTP-mode messages as its booklet describes them.
 * Rows hold the right location, metrics, attributes and ts; a request sent again makes no new
 * row; bad input gets a specific error and publishes nothing; a device refused by the 'reject'
 * policy gets 403 and one quarantine row however often it retries; the key is never logged.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createSql, type Sql } from "../../src/db/client.ts";
import { freePort } from "../../src/embedded/process.ts";
import { configureLogger } from "../../src/lib/log.ts";
import { createKey, createTenant, updateTenant } from "../../src/tenants/store.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;
let nc: NatsConnection;
let port: string;
let lockedKey = "";
let slowKey = "";
let databaseUrl = "";
const logLines: string[] = [];

const S = BASE_TS / 1000; // epoch seconds of 2026-01-01T00:00:00Z

beforeAll(async () => {
  nats = await startNats();
  databaseUrl = await freshDatabase("trackers");
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    TELEMETRY_OSMAND_PORT: String(await freePort()),
    TELEMETRY_AUTH_CACHE_TTL: "1s",
    TELEMETRY_MAX_FUTURE: "3650d",
  });
  // From here on every log line of the server is captured, at info (one line per request).
  configureLogger("info", true, { write: (line: string) => void logLines.push(line) });
  port = `http://127.0.0.1:${server.osmandPort}`;
  sql = createSql(databaseUrl, { max: 2, name: "test" });
  nc = await connect({ servers: nats.url });
  await createTenant(sql, { id: "locked", device_policy: "reject", limits: {} } as never);
  lockedKey = (await createKey(sql, "locked", "tracker"))!.key;
  await createTenant(sql, { id: "slow", device_policy: "auto", limits: { rate_per_second: 0.01, burst: 1 } } as never);
  slowKey = (await createKey(sql, "slow", "tracker"))!.key;
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await sql?.end({ timeout: 1 });
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const streamMessages = async () => (await (await jetstreamManager(nc)).streams.info("TELEMETRY")).state.messages;

const rowsOf = (tenant: string, device: string) =>
  sql`SELECT ts, lat, lon, metrics, attributes FROM readings WHERE tenant = ${tenant} AND device_id = ${device} ORDER BY ts`;

async function storedRow(device: string, what: string, tenant = "acme") {
  const rows = await check(
    async () => {
      const r = await rowsOf(tenant, device);
      return r.length > 0 && r;
    },
    { what, timeoutMs: 20_000 },
  );
  expect(rows.length).toBe(1);
  return rows[0]!;
}

async function send(url: string, init: RequestInit = {}) {
  const res = await fetch(url, init);
  return { status: res.status, text: await res.text(), headers: res.headers };
}

const form = (body: string, method = "POST"): RequestInit => ({
  method,
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body,
});
const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("OsmAnd / Traccar Client", () => {
  test("GET with the query (Traccar's documented form) on /osmand/<key>: 200, empty body, one row; sent again, no new row", async () => {
    const q = `id=123456&lat=52.52&lon=13.405&timestamp=${S}&hdop=1.2&altitude=34.5&speed=10`;
    const r = await send(`${server.url}/osmand/${TEST_KEY}?${q}`);
    expect(r).toMatchObject({ status: 200, text: "" });
    const row = await storedRow("123456", "the OsmAnd reading");
    expect(row.ts.getTime()).toBe(BASE_TS);
    expect([row.lat, row.lon]).toEqual([52.52, 13.405]);
    expect(row.metrics).toEqual({ hdop: 1.2, altitude: 34.5, speed: 18.52 }); // 10 knots in km/h
    expect(row.attributes).toBeNull();

    const before = await streamMessages();
    expect((await send(`${server.url}/osmand/${TEST_KEY}?${q}`)).status).toBe(200);
    expect(await streamMessages()).toBe(before); // JetStream's deduplication: the same event id
    // A later reading of the same device lands, and the first one is still there once.
    expect((await send(`${server.url}/osmand/${TEST_KEY}?${q.replace(`${S}`, `${S + 60}`)}`)).status).toBe(200);
    await check(async () => (await rowsOf("acme", "123456")).length === 2, { what: "the second reading" });
    expect((await rowsOf("acme", "123456")).map((x) => x.ts.getTime())).toEqual([BASE_TS, BASE_TS + 60_000]);
    // auto-provisioning, as for JSON: the new device is in the device list
    await check(async () => (await sql`SELECT 1 FROM devices WHERE tenant = 'acme' AND device_id = '123456'`).length);
  });

  test("the Android client's POST with the query and an empty body, on the dedicated port (/<key>)", async () => {
    const q = `id=android-1&timestamp=${S}&lat=48.1&lon=11.5&speed=0&bearing=270&altitude=520&accuracy=12&batt=64&charge=true`;
    const r = await send(`${port}/${TEST_KEY}?${q}`, { method: "POST" });
    expect(r).toMatchObject({ status: 200, text: "" });
    const row = await storedRow("android-1", "the Android client's reading");
    expect([row.lat, row.lon, row.ts.getTime()]).toEqual([48.1, 11.5, BASE_TS]);
    expect(row.metrics).toEqual({ speed: 0, heading: 270, altitude: 520, accuracy: 12, battery: 64 });
    expect(row.attributes).toEqual({ charging: true });
  });

  test("a form body to /osmand?key=<key>, ISO 8601 timestamp and location=lat,lon", async () => {
    const r = await send(
      `${server.url}/osmand?key=${TEST_KEY}`,
      form(`deviceid=form-1&location=40.4,-3.7&timestamp=2026-01-01T00:02:00Z&valid=true&driver=ana&temp=21.5`),
    );
    expect(r).toMatchObject({ status: 200, text: "" });
    const row = await storedRow("form-1", "the form reading");
    expect([row.lat, row.lon, row.ts.getTime()]).toEqual([40.4, -3.7, BASE_TS + 120_000]);
    expect(row.metrics).toEqual({ temp: 21.5 });
    expect(row.attributes).toEqual({ valid: true, driver: "ana" });
  });

  test("Traccar Client 9's JSON body, on the dedicated port with ?key=", async () => {
    const body = {
      location: {
        timestamp: "2026-01-01T00:03:00.500Z",
        coords: { latitude: -6.2, longitude: 106.8, accuracy: 11.4, speed: 0.5, heading: -1, altitude: 12.1 },
        is_moving: false,
        odometer: 1520,
        event: "motionchange",
        battery: { level: 0.8, is_charging: false },
        activity: { type: "still" },
        extras: {},
      },
      device_id: "tc9-1",
    };
    const r = await send(`${port}/?key=${TEST_KEY}`, json(body));
    expect(r).toMatchObject({ status: 200, text: "" });
    const row = await storedRow("tc9-1", "the Traccar Client 9 reading");
    expect([row.lat, row.lon, row.ts.getTime()]).toEqual([-6.2, 106.8, BASE_TS + 180_500]);
    // m/s -> km/h; heading -1 means unknown; battery level 0..1 -> percent
    expect(row.metrics).toEqual({ speed: 1.8, accuracy: 11.4, altitude: 12.1, odometer: 1520, battery: 80 });
    expect(row.attributes).toEqual({ moving: false, event: "motionchange", activity: "still", charging: false });
  });

  test("bad input: 400 with one line naming the problem, 401 without a usable key; nothing published", async () => {
    const before = await streamMessages();
    const k = `${server.url}/osmand/${TEST_KEY}`;
    const cases: Array<[string, string, RequestInit | undefined, number, string]> = [
      ["lat 91", `${k}?id=bad-1&lat=91&lon=0&timestamp=${S}`, undefined, 400, "lat"],
      ["lon 181", `${k}?id=bad-1&lat=0&lon=181&timestamp=${S}`, undefined, 400, "lon"],
      ["missing id", `${k}?lat=1&lon=2&timestamp=${S}`, undefined, 400, "id: the device id"],
      ["bad timestamp", `${k}?id=bad-1&lat=1&lon=2&timestamp=yesterday`, undefined, 400, "timestamp:"],
      ["fractional epoch", `${k}?id=bad-1&lat=1&lon=2&timestamp=1767225600.5`, undefined, 400, "timestamp:"],
      ["timestamp before 2000", `${k}?id=bad-1&lat=1&lon=2&timestamp=5`, undefined, 400, "ts"],
      ["speed not a number", `${k}?id=bad-1&lat=1&lon=2&timestamp=${S}&speed=fast`, undefined, 400, "speed:"],
      ["lat without lon", `${k}?id=bad-1&lat=1&timestamp=${S}`, undefined, 400, "lon:"],
      ["bad device id", `${k}?id=a%20b&lat=1&lon=2&timestamp=${S}`, undefined, 400, "device_id"],
      ["an empty request", k, undefined, 400, "id: the device id"],
      ["an empty form body", k, form(""), 400, "id: the device id"],
      ["invalid JSON body", k, json("{not json"), 400, "not valid JSON"],
      ["JSON without device_id", k, json({ location: { timestamp: "2026-01-01T00:00:00Z" } }), 400, "device_id"],
      ["JSON batch (array of locations)", k, json({ device_id: "x", location: [] }), 400, "location"],
      ["no key", `${server.url}/osmand?id=bad-1&lat=1&lon=2`, undefined, 401, "unauthenticated"],
      ["a wrong key", `${server.url}/osmand/wrong-key-0123456789?id=bad-1`, undefined, 401, "unauthenticated"],
      ["no key on the port", `${port}/?id=bad-1&lat=1&lon=2`, undefined, 401, "unauthenticated"],
    ];
    for (const [what, url, init, status, needle] of cases) {
      const r = await send(url, init);
      expect({ what, status: r.status }).toEqual({ what, status });
      expect(r.text, what).toContain(needle);
      expect(r.text.trim().split("\n").length, what).toBe(1);
      expect(r.headers.get("content-type"), what).toStartWith("text/plain");
    }
    expect(await streamMessages()).toBe(before);
  });

  test("reject policy: an unknown device gets 403 unknown_device each time, one quarantine row, the metric counts every refusal", async () => {
    const metricBefore = await rejectedUnknown();
    const q = `id=stranger&lat=1&lon=2&timestamp=${S}`;
    const before = await streamMessages();
    for (let i = 0; i < 4; i++) {
      const r = await send(`${server.url}/osmand/${lockedKey}?${q}`);
      expect(r.status).toBe(403);
      expect(r.text).toStartWith("unknown_device: ");
    }
    expect(await streamMessages()).toBe(before);
    const rows = await check(
      async () => {
        const r = await sql`SELECT subject, reason, payload FROM quarantine WHERE source = 'osmand'`;
        return r.length > 0 && r;
      },
      { what: "the refused device in the quarantine" },
    );
    expect(rows.length).toBe(1);
    expect(rows[0]!.subject).toBe("locked/stranger");
    expect(rows[0]!.reason).toStartWith("unknown_device: ");
    expect(JSON.parse(rows[0]!.payload)).toMatchObject({ device_id: "stranger", location: { lat: 1, lon: 2 } });
    expect(rows[0]!.payload).not.toContain(lockedKey);
    expect((await rejectedUnknown()) - metricBefore).toBe(4);
    // `quarantine replay` has no message to publish for a refusal row: it skips it, and it stays.
    const replay = Bun.spawnSync({
      cmd: [process.execPath, "src/cli/main.ts", "quarantine", "replay", "--all", "--source", "osmand"],
      env: { PATH: process.env.PATH!, NATS_URL: nats.url, DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" },
      stderr: "pipe",
    });
    expect({ code: replay.exitCode, out: replay.stdout.toString() }).toEqual({
      code: 0,
      out: "replayed 0 message(s)\n",
    });
    expect((await sql`SELECT 1 FROM quarantine WHERE source = 'osmand'`).length).toBe(1);
  });
});

describe("transient refusals are not 4xx-for-good: 429 and 503 say when to retry", () => {
  test("over the tenant's rate: 429 with Retry-After and a text line; nothing published", async () => {
    expect((await send(`${server.url}/osmand/${slowKey}?id=s-1&lat=1&lon=2&timestamp=${S}`)).status).toBe(200);
    const before = await streamMessages();
    const r = await send(`${port}/${slowKey}?id=s-1&lat=1&lon=2&timestamp=${S + 1}`);
    expect(r.status).toBe(429);
    expect(r.text).toStartWith("rate_limited: ");
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await streamMessages()).toBe(before);
  });

  test("a suspended tenant: 403 tenant_suspended in each protocol's form", async () => {
    await updateTenant(sql, "slow", { status: "suspended", suspended_reason: "unpaid" } as never);
    await check(
      async () => (await send(`${server.url}/osmand/${slowKey}?id=s-1&lat=1&lon=2&timestamp=${S + 2}`)).status === 403,
      { what: "the suspension seen by the key cache", timeoutMs: 15_000 },
    );
    const r = await send(`${server.url}/osmand/${slowKey}?id=s-1&lat=1&lon=2&timestamp=${S + 2}`);
    expect(r.text).toBe("tenant_suspended: tenant slow is suspended: unpaid\n");
    const o = await send(
      `${server.url}/owntracks/${slowKey}`,
      json({ _type: "location", tid: "S1", lat: 1, lon: 2, tst: S }),
    );
    expect(o.status).toBe(403);
    expect(JSON.parse(o.text).error.code).toBe("tenant_suspended");
  });
});

async function rejectedUnknown(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const m = /^telemetry_ingest_records_total\{outcome="rejected",reason="unknown_device"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

describe("OwnTracks HTTP mode", () => {
  const location = {
    _type: "location",
    tid: "JJ",
    acc: 15,
    alt: 50,
    batt: 85,
    bs: 1,
    conn: "w",
    lat: 52.5163,
    lon: 13.3777,
    tst: S + 240,
    vel: 12,
    cog: 90,
    vac: 3,
    t: "u",
    created_at: S + 241,
    inregions: ["home"],
  };
  const app = (body: unknown, extra: Record<string, string> = {}) =>
    json(body, { authorization: basic("jane", TEST_KEY), "x-limit-u": "jane", "x-limit-d": "phone", ...extra });

  test("a location with Basic auth: 200 [], one row as user:device; sent again, no new row", async () => {
    const r = await send(`${server.url}/owntracks`, app(location));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual([]);
    expect(r.headers.get("content-type")).toStartWith("application/json");
    const row = await storedRow("jane:phone", "the OwnTracks location");
    expect([row.lat, row.lon, row.ts.getTime()]).toEqual([52.5163, 13.3777, BASE_TS + 240_000]);
    expect(row.metrics).toEqual({
      accuracy: 15,
      altitude: 50,
      battery: 85,
      battery_status: 1,
      speed: 12,
      heading: 90,
      vertical_accuracy: 3,
    });
    expect(row.attributes).toEqual({ tid: "JJ", conn: "w", trigger: "u", inregions: "home" });
    const before = await streamMessages();
    expect((await send(`${server.url}/owntracks`, app(location))).status).toBe(200);
    expect(await streamMessages()).toBe(before);
  });

  test("the key in the path, no identity headers: the tracker id is the device", async () => {
    const r = await send(`${server.url}/owntracks/${TEST_KEY}`, json({ ...location, tid: "K9", tst: S + 300 }));
    expect(r.status).toBe(200);
    const row = await storedRow("K9", "the OwnTracks location by tid");
    expect(row.ts.getTime()).toBe(BASE_TS + 300_000);
    // the booklet's ?u=&d= instead of the headers
    expect((await send(`${server.url}/owntracks/${TEST_KEY}?u=bob&d=tab`, json(location))).status).toBe(200);
    expect((await storedRow("bob:tab", "the OwnTracks location by ?u=&d=")).ts.getTime()).toBe(BASE_TS + 240_000);
  });

  test("other message types and an empty body: 200 [] and nothing stored", async () => {
    const before = await streamMessages();
    for (const body of [
      { _type: "transition", event: "enter", desc: "home", lat: 1, lon: 2, tst: S, acc: 5, tid: "JJ", t: "c" },
      { _type: "waypoint", desc: "home", lat: 1, lon: 2, rad: 50, tst: S },
      { _type: "lwt", tst: S },
      { _type: "status", android: {} },
      "",
    ]) {
      const r = await send(`${server.url}/owntracks`, app(body));
      expect({ body, status: r.status, text: r.text }).toEqual({ body, status: 200, text: "[]" });
    }
    expect(await streamMessages()).toBe(before);
  });

  test("reject policy: 403 unknown_device as JSON, one quarantine row (source owntracks)", async () => {
    const msg = { _type: "location", tid: "ZZ", lat: 1, lon: 2, tst: S };
    for (let i = 0; i < 3; i++) {
      const r = await send(`${server.url}/owntracks/${lockedKey}`, json(msg));
      expect(r.status).toBe(403);
      expect(JSON.parse(r.text).error.code).toBe("unknown_device");
    }
    const rows = await check(
      async () => {
        const r = await sql`SELECT subject FROM quarantine WHERE source = 'owntracks'`;
        return r.length > 0 && r;
      },
      { what: "the refused OwnTracks device in the quarantine" },
    );
    expect(rows.map((r) => r.subject)).toEqual(["locked/ZZ"]);
  });

  test("bad input: a specific error code, nothing published", async () => {
    const before = await streamMessages();
    const cases: Array<[string, RequestInit, number, string, string]> = [
      ["encrypted", app({ _type: "encrypted", data: "aGVsbG8=" }), 400, "encrypted_payload", "encryption"],
      ["lat 91", app({ ...location, lat: 91 }), 400, "invalid_record", "lat"],
      ["no tst", app({ ...location, tst: undefined }), 400, "invalid_record", "tst"],
      ["tst in ms", app({ ...location, tst: 1.5 }), 400, "invalid_record", "tst"],
      ["vel a string", app({ ...location, vel: "12" }), 400, "invalid_record", "vel"],
      ["no _type", app({ lat: 1, lon: 2, tst: S }), 400, "invalid_record", "_type"],
      ["invalid JSON", app("{"), 400, "invalid_json", ""],
      [
        "no identity",
        json({ ...location, tid: undefined }, { authorization: basic("", TEST_KEY) }),
        400,
        "invalid_record",
        "tid",
      ],
      [
        "a wrong password",
        app(location, { authorization: basic("jane", "wrong-key-0123456789") }),
        401,
        "unauthenticated",
        "",
      ],
      ["no auth", json(location), 401, "unauthenticated", "password"],
      ["GET", { method: "GET" }, 405, "method_not_allowed", "POST"],
    ];
    for (const [what, init, status, code, needle] of cases) {
      const r = await send(`${server.url}/owntracks`, init);
      const body = JSON.parse(r.text);
      expect({ what, status: r.status, code: body.error?.code }).toEqual({ what, status, code });
      expect(body.error.message, what).toContain(needle);
    }
    expect((await send(`${server.url}/owntracks`, json(location))).headers.get("www-authenticate")).toStartWith(
      "Basic",
    );
    expect(await streamMessages()).toBe(before);
  });
});

test("the key is never logged: the request lines show the paths redacted", async () => {
  // A few more requests with the key in the path and in the query, matched by a route or not.
  await send(`${server.url}/osmand/${TEST_KEY}/extra?id=x`);
  await send(`${server.url}/OSMAND/${TEST_KEY}`);
  await send(`${server.url}/osmand?token=${TEST_KEY}&id=log-1&timestamp=${S}`);
  await send(`${port}/${TEST_KEY}/a/b`);
  await check(() => logLines.some((l) => l.includes('"path":"/[redacted]"')), { what: "the port's request lines" });
  const all = logLines.join("");
  for (const key of [TEST_KEY, lockedKey, "wrong-key-0123456789"]) expect(all).not.toContain(key);
  const paths = new Set(
    logLines
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === "request")
      .map((l) => l.path as string),
  );
  expect(paths).toContain("/osmand/[redacted]");
  expect(paths).toContain("/owntracks/[redacted]");
  expect(paths).toContain("/osmand");
  expect(paths).toContain("/[redacted]");
});

test("a device key in the URL names the device: OsmAnd without id, Traccar JSON without device_id, OwnTracks; another id is 403", async () => {
  const phone = (await createKey(sql, "acme", "phone key", { kind: "device", device: "dk-phone" }))!.key;
  const owner = (await createKey(sql, "acme", "owner key", { kind: "device", device: "dk-owner" }))!.key;
  expect((await send(`${port}/${phone}?lat=52.5&lon=13.4&timestamp=${S + 11}`)).status).toBe(200);
  const json = {
    location: { timestamp: new Date(BASE_TS + 12_000).toISOString(), coords: { latitude: 52.6, longitude: 13.5 } },
  };
  const posted = await send(`${server.url}/osmand/${phone}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(json),
  });
  expect(posted.status).toBe(200);
  await check(async () => (await rowsOf("acme", "dk-phone")).length === 2, { what: "both dk-phone rows" });

  const before = await streamMessages();
  const other = await send(`${port}/${phone}?id=someone-else&lat=52.5&lon=13.4&timestamp=${S + 13}`);
  expect(other.status).toBe(403);
  expect(other.text).toStartWith("device_mismatch:");
  expect(await streamMessages()).toBe(before);

  // OwnTracks always names a user/device; a device key's device is used instead.
  const loc = { _type: "location", lat: 48.1, lon: 11.5, tst: S + 14, tid: "jp" };
  const owned = await send(`${server.url}/owntracks/${owner}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-limit-u": "jane", "x-limit-d": "phone" },
    body: JSON.stringify(loc),
  });
  expect(owned.status).toBe(200);
  await storedRow("dk-owner", "the OwnTracks reading under the device key");
  expect((await rowsOf("acme", "jane:phone")).filter((r) => Number(r.ts) === (S + 14) * 1000)).toHaveLength(0);
});
