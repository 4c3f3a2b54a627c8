/**
 * The line-protocol endpoints through HTTP on a real server (real nats-server and PostgreSQL):
 * a bad-input corpus (each a specific InfluxDB-shaped error, nothing published: the stream's
 * message count unchanged), partial writes (the good lines stored, the bad ones named), status
 * codes for rate limits and a broker outage (429/503 + Retry-After, never another 4xx), auth
 * forms, /ping and /query, precision, and two measurements of one host at one ms over two requests.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { createSql, type Sql } from "../../src/db/client.ts";
import { BASE_TS } from "../helpers/data.ts";
import { writerDrained } from "../helpers/drained.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { OTHER_KEY, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let nc: NatsConnection;
let sql: Sql;
let databaseUrl: string;
const ADMIN = "admin-token-0123456789abcdef";

beforeAll(async () => {
  nats = await startNats();
  databaseUrl = await freshDatabase("lp");
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    TELEMETRY_MAX_BODY: "64KiB",
    TELEMETRY_MAX_RECORDS: "100",
    TELEMETRY_DEVICE_BURST: "20",
    TELEMETRY_DEVICE_RATE: "0.001",
    TELEMETRY_ROLES: "ingest,writer,api",
    TELEMETRY_ADMIN_TOKEN: ADMIN,
    TELEMETRY_AUTH_CACHE_TTL: "300ms",
    TELEMETRY_LP_BARE_MEASUREMENTS: "bare",
  });
  nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await nc?.close();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const storedMessages = async () => (await (await jetstreamManager(nc)).streams.info("TELEMETRY")).state.messages;
const rows = async (device: string, tenant = "acme") =>
  [
    ...(await sql`SELECT lat, lon, metrics, attributes FROM readings WHERE tenant = ${tenant} AND device_id = ${device} ORDER BY metrics::text`),
  ].map((r): Record<string, unknown> => (r.lat === null ? { metrics: r.metrics, attributes: r.attributes } : { ...r }));
const T = `${BASE_TS}000000`; // epoch ns

interface Req {
  path?: string;
  method?: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  auth?: string | null;
}

async function send(req: Req) {
  const headers: Record<string, string> = { ...req.headers };
  const auth = req.auth === undefined ? `Token ${TEST_KEY}` : req.auth;
  if (auth !== null) headers.authorization = auth;
  const res = await fetch(`${server.url}${req.path ?? "/api/v2/write?org=o&bucket=b&precision=ns"}`, {
    method: req.method ?? "POST",
    headers,
    body: req.body,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : null };
}

describe("bad input: a specific error in InfluxDB's shape, nothing published", () => {
  const tooMany = Array.from({ length: 101 }, (_, i) => `m,host=many v=${i} ${BASE_TS + i}000000`).join("\n");
  const cases: Array<[string, Req, number, string, string]> = [
    [
      "a malformed line",
      { body: "cpu,host=bad usage=" },
      400,
      "invalid",
      "line 1: unable to parse 'cpu,host=bad usage=': missing field value for field 'usage'",
    ],
    [
      "a bad escape (a tag value ending with a backslash)",
      { body: "cpu,host=a\\\\ v=1" },
      400,
      "invalid",
      "ends with a backslash",
    ],
    ["an unterminated string", { body: 'cpu,host=a v="open' }, 400, "invalid", "unterminated string in field 'v'"],
    [
      "an overflowing integer",
      { body: `cpu,host=a v=9223372036854775808i ${T}` },
      400,
      "invalid",
      "integer field 'v' out of range",
    ],
    [
      "an overflowing unsigned",
      { body: `cpu,host=a v=18446744073709551616u ${T}` },
      400,
      "invalid",
      "unsigned integer field 'v' out of range",
    ],
    [
      "a timestamp beyond int64",
      { body: "cpu,host=a v=1 99999999999999999999" },
      400,
      "invalid",
      "out of range: in precision ns it must fit int64",
    ],
    ["a timestamp in 1970", { body: "cpu,host=a v=1 1" }, 400, "invalid", "ts: timestamp is before 2000"],
    ["a timestamp far in the future", { body: "cpu,host=a v=1 9000000000000000000" }, 400, "invalid", "in the future"],
    [
      "lat 91",
      { body: `gps,device=g lat=91,lon=0 ${T}` },
      400,
      "invalid",
      "location.lat: lat must be between -90 and 90",
    ],
    [
      "a missing device tag",
      { body: `cpu,region=eu v=1 ${T}` },
      400,
      "invalid",
      "has no device tag (one of 'device', 'host')",
    ],
    ["a bad device id", { body: `cpu,host=a.b v=1 ${T}` }, 400, "invalid", "device_id must not contain '.'"],
    [
      "only a string field",
      { body: `cpu,host=a s="x" ${T}` },
      400,
      "invalid",
      "a record needs a location or at least one metric",
    ],
    [
      "an unknown precision",
      { path: "/api/v2/write?org=o&bucket=b&precision=xs", body: `m,host=a v=1 ${T}` },
      400,
      "invalid",
      "unknown precision 'xs': use one of ns, us, ms, s",
    ],
    [
      "a v1 precision on v2",
      { path: "/api/v2/write?precision=u", body: `m,host=a v=1 ${T}` },
      400,
      "invalid",
      "unknown precision 'u'",
    ],
    ["an empty body", { body: "" }, 400, "invalid", "writing requires points"],
    ["only comments", { body: "# nothing\n\n" }, 400, "invalid", "writing requires points"],
    [
      "not UTF-8",
      { body: new Uint8Array([0x6d, 0x2c, 0xff, 0x3d, 0x61, 0x20, 0x76, 0x3d, 0x31]) },
      400,
      "invalid",
      "not valid UTF-8",
    ],
    [
      "corrupt gzip",
      { body: new Uint8Array([0x1f, 0x8b, 1, 2, 3]), headers: { "content-encoding": "gzip" } },
      400,
      "invalid",
      "not valid gzip",
    ],
    [
      "a gzip bomb",
      { body: gzipSync(Buffer.alloc(50_000_000, 0x61)), headers: { "content-encoding": "gzip" } },
      413,
      "request too large",
      "once gzip-decoded",
    ],
    [
      "an oversize body",
      { body: `m,host=a s="${"x".repeat(70_000)}"` },
      413,
      "request too large",
      "larger than 65536 bytes",
    ],
    ["too many lines", { body: tooMany }, 413, "request too large", "at most 100 per request"],
    [
      "an unsupported encoding",
      { body: "x", headers: { "content-encoding": "br" } },
      415,
      "unsupported media type",
      "not supported",
    ],
    ["no key", { body: `m,host=a v=1 ${T}`, auth: null }, 401, "unauthorized", "missing credentials"],
    [
      "an unknown key",
      { body: `m,host=a v=1 ${T}`, auth: "Token nope-nope-nope-nope-nope" },
      401,
      "unauthorized",
      "unknown or revoked API key",
    ],
    [
      "a malformed Authorization",
      { body: `m,host=a v=1 ${T}`, auth: "Digest abc" },
      401,
      "unauthorized",
      "must be 'Token <api key>'",
    ],
    ["a GET", { method: "GET" }, 405, "method not allowed", "write with POST"],
    ["a PUT", { method: "PUT", body: `m,host=a v=1 ${T}` }, 405, "method not allowed", "write with POST"],
  ];

  test.each(cases)("%s", async (_, req, status, code, fragment) => {
    const before = await storedMessages();
    const res = await send(req);
    expect(res.status).toBe(status);
    expect(res.json.code).toBe(code);
    expect(res.json.message).toContain(fragment);
    expect(await storedMessages()).toBe(before);
  });

  test("/write answers errors as InfluxDB 1 does ({error}); /api/v3/write_lp lists the lines", async () => {
    const before = await storedMessages();
    const v1 = await send({ path: "/write?db=x&precision=xs", body: `m,host=a v=1 ${T}` });
    expect(v1.status).toBe(400);
    expect(v1.json).toEqual({ error: "unknown precision 'xs': use one of n, ns, u, us, ms, s, m, h" });
    const noKey = await send({ path: "/write?db=x", body: `m,host=a v=1 ${T}`, auth: null });
    expect(noKey.status).toBe(401);
    expect(Object.keys(noKey.json)).toEqual(["error"]);
    const v3 = await send({ path: "/api/v3/write_lp?db=x", body: "m,host=a v=\n" });
    expect(v3.status).toBe(400);
    expect(v3.json.data).toEqual([
      { line_number: 1, error_message: "unable to parse 'm,host=a v=': missing field value for field 'v'" },
    ]);
    expect(await storedMessages()).toBe(before);
  });
});

describe("writes", () => {
  test("a partial write: the valid lines are stored, 400 names the first bad lines", async () => {
    const body = [`m,host=pw v=1 ${T}`, "garbage", `m,host=pw w=2 ${T}`, `m,region=x v=3 ${T}`].join("\n");
    const res = await send({ body });
    expect(res.status).toBe(400);
    expect(res.json.code).toBe("invalid");
    expect(res.json.message).toStartWith(
      "partial write: 2 of 4 lines stored, 2 rejected; line 2: unable to parse 'garbage'",
    );
    expect(res.json.lines.map((l: { line: number }) => l.line)).toEqual([2, 4]);
    await check(async () => (await rows("pw")).length === 2, { what: "2 rows of pw" });
    expect(await rows("pw")).toEqual([
      { metrics: { m_v: 1 }, attributes: null },
      { metrics: { m_w: 2 }, attributes: null },
    ]);
  });

  test("two measurements of one host at one ms over two requests are two rows; re-sending adds none", async () => {
    for (let i = 0; i < 2; i++) {
      expect((await send({ body: `cpu,host=split usage=5 ${T}` })).status).toBe(204);
      expect((await send({ body: `mem,host=split used=70 ${T}` })).status).toBe(204);
    }
    // one request, the same line twice: one reading
    expect((await send({ body: `mem,host=split used=70 ${T}\nmem,host=split used=70 ${T}` })).status).toBe(204);
    await check(async () => (await rows("split")).length === 2, { what: "2 rows of split" });
    await writerDrained(nats.url);
    expect(await rows("split")).toEqual([
      { metrics: { cpu_usage: 5 }, attributes: null },
      { metrics: { mem_used: 70 }, attributes: null },
    ]);
  });

  test("per-CPU lines (one host, measurement, field keys and ms; only a tag differs) are one reading: the second is a 400, not a silent duplicate", async () => {
    const res = await send({ body: `cpu,host=pc,cpu=cpu0 usage=1 ${T}\ncpu,host=pc,cpu=cpu1 usage=2 ${T}` });
    expect(res.status).toBe(400);
    expect(res.json.message).toContain("line 2: point 'cpu' is the reading of line 1");
    await check(async () => (await rows("pc")).length === 1, { what: "row of pc" });
    expect(await rows("pc")).toEqual([{ metrics: { cpu_usage: 1 }, attributes: { cpu: "cpu0" } }]);
  });

  test("every auth form and API: Token, Bearer, Basic, ?u=&p=, v3 with precision auto", async () => {
    const basic = `Basic ${Buffer.from(`telegraf:${TEST_KEY}`).toString("base64")}`;
    const writes: Req[] = [
      { body: `a,host=auth v=1 ${T}` },
      { body: `b,host=auth v=1 ${BASE_TS}`, auth: `Bearer ${TEST_KEY}`, path: "/api/v2/write?precision=ms" },
      { body: `c,host=auth v=1 ${BASE_TS / 1000}`, auth: basic, path: "/write?db=x&precision=s" },
      { body: `d,host=auth v=1 ${BASE_TS}000`, auth: null, path: `/write?db=x&u=x&p=${TEST_KEY}&precision=u` },
      { body: `e,host=auth v=1 ${BASE_TS}`, path: "/api/v3/write_lp?db=x" },
      { body: `f,host=auth v=1 ${T}`, path: "/api/v3/write_lp?db=x&precision=nanosecond" },
      { body: gzipSync(`g,host=auth v=1 ${T}`), headers: { "content-encoding": "gzip" } },
    ];
    for (const w of writes) expect((await send(w)).status).toBe(204);
    await check(async () => (await rows("auth")).length === writes.length, { what: "rows of auth" });
    const ts =
      await sql`SELECT DISTINCT (extract(epoch from ts) * 1000)::bigint::text AS ms FROM readings WHERE device_id = 'auth'`;
    expect(ts.map((r) => Number(r.ms))).toEqual([BASE_TS]);
  });

  test("a device over its rate limit: 429 with Retry-After, the retry stores nothing twice", async () => {
    const body = Array.from({ length: 21 }, (_, i) => `m,host=limited v=${i} ${BASE_TS + i}000000`).join("\n");
    const res = await send({ body });
    expect(res.status).toBe(429);
    expect(res.json.code).toBe("too many requests");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    await check(async () => (await rows("limited")).length === 20, { what: "20 rows of limited" });
    const again = await send({ body: `m,host=limited v=0 ${BASE_TS}000000` });
    expect(again.status).toBe(429); // its bucket is empty: refused as a whole, in InfluxDB's shape
    expect(again.json.code).toBe("too many requests");
  });
});

describe("mapping settings", () => {
  test("server-wide (TELEMETRY_LP_BARE_MEASUREMENTS=bare): its fields are metrics by their own name", async () => {
    expect((await send({ body: `bare,host=srv v=1 ${T}\nother,host=srv v=2 ${T}` })).status).toBe(204);
    await check(async () => (await rows("srv")).length === 2, { what: "rows of srv" });
    expect((await rows("srv")).map((r) => r.metrics)).toEqual([{ other_v: 2 }, { v: 1 }]);
  });

  test("per tenant through the admin API and the CLI; the other tenant keeps the server's", async () => {
    const patch = (body: unknown) =>
      fetch(`${server.url}/admin/v1/tenants/beta`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const set = await patch({ line_protocol: { device_tags: ["serial"], bare_measurements: ["env"] } });
    expect(set.status).toBe(200);
    expect(((await set.json()) as { line_protocol: unknown }).line_protocol).toEqual({
      device_tags: ["serial"],
      bare_measurements: ["env"],
    });
    const bad = await patch({ line_protocol: { device_tags: [] } });
    expect(bad.status).toBe(422);
    const beta = { auth: `Token ${OTHER_KEY}` };
    expect((await send({ ...beta, body: `env,serial=S1,host=h temp=1 ${T}` })).status).toBe(204);
    await check(async () => (await rows("S1", "beta")).length === 1, { what: "row of S1" });
    expect(await rows("S1", "beta")).toEqual([{ metrics: { temp: 1 }, attributes: { host: "h" } }]);
    const noSerial = await send({ ...beta, body: `env,host=h temp=1 ${T}` });
    expect(noSerial.json.message).toContain("has no device tag (one of 'serial')");
    expect((await send({ body: `env,serial=S1,host=h temp=1 ${T}` })).status).toBe(204); // acme: host is the device
    await check(async () => (await rows("h")).length === 1, { what: "row of h" });

    const cli = Bun.spawnSync({
      cmd: [
        process.execPath,
        "src/cli/main.ts",
        "tenants",
        "update",
        "beta",
        "--database-url",
        databaseUrl,
        "--json",
        "--lp-device-tags",
        "default",
        "--lp-lat-fields",
        "y",
        "--lp-lon-fields",
        "x",
      ],
      cwd: `${import.meta.dir}/../..`,
      env: { PATH: process.env.PATH!, LOG_LEVEL: "warn" },
    });
    expect(cli.stderr.toString()).toBe("");
    expect(JSON.parse(cli.stdout.toString()).line_protocol).toEqual({
      bare_measurements: ["env"],
      lat_fields: ["y"],
      lon_fields: ["x"],
    });
    // The key cache sees the change within TELEMETRY_AUTH_CACHE_TTL: host names the device again.
    await check(async () => (await send({ ...beta, body: `probe,host=P v=1 ${T}` })).status === 204, {
      what: "new mapping",
    });
    expect((await send({ ...beta, body: `gps,host=S2 y=1,x=2 ${T}` })).status).toBe(204);
    await check(async () => (await rows("S2", "beta")).length === 1, { what: "row of S2" });
    expect(await rows("S2", "beta")).toEqual([{ lat: 1, lon: 2, metrics: null, attributes: null }]);
  });
});

describe("device policy and tenant status (admit's and the key middleware's 403)", () => {
  const admin = (path: string, body: unknown) =>
    fetch(`${server.url}${path}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const beta = { auth: `Token ${OTHER_KEY}` };

  test("reject policy: unknown devices are bad lines (400, the known one stored), or 403 when none is known", async () => {
    expect((await admin("/admin/v1/tenants/beta", { device_policy: "reject" })).status).toBe(200);
    try {
      const registered = await fetch(`${server.url}/api/v1/devices`, {
        method: "POST",
        headers: { authorization: `Bearer ${OTHER_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ device_id: "known" }),
      });
      expect(registered.status).toBeLessThan(300);
      const before = await storedMessages();
      const none = await send({ ...beta, body: `m,host=stranger v=1 ${T}` });
      expect([none.status, none.json.code]).toEqual([403, "forbidden"]);
      expect(none.json.message).toContain("no record of this request is from a registered device");
      expect(await storedMessages()).toBe(before);
      const mixed = await send({ ...beta, body: `m,host=known v=1 ${T}\nm,host=stranger v=2 ${T}` });
      expect(mixed.status).toBe(400);
      expect(mixed.json.message).toContain("partial write: 1 of 2 lines stored, 1 rejected; line 2: device_id:");
      await check(async () => (await rows("known", "beta")).length === 1, { what: "row of known" });
      expect(await rows("stranger", "beta")).toEqual([]);
    } finally {
      await admin("/admin/v1/tenants/beta", { device_policy: "auto" });
    }
  });

  test("a suspended tenant: 403 in InfluxDB's shape, nothing published", async () => {
    expect((await admin("/admin/v1/tenants/beta", { status: "suspended", suspended_reason: "unpaid" })).status).toBe(
      200,
    );
    try {
      const before = await storedMessages();
      const res = await send({ ...beta, path: "/write?db=x", body: `m,host=known v=9 ${T}` });
      expect(res.status).toBe(403);
      expect(res.json).toEqual({ error: "tenant beta is suspended: unpaid" });
      expect(await storedMessages()).toBe(before);
    } finally {
      await admin("/admin/v1/tenants/beta", { status: "active" });
    }
  });
});

describe("ping and query", () => {
  test("GET and HEAD /ping: 204 with X-Influxdb-Version, no key; verbose=true 200 with the version", async () => {
    for (const method of ["GET", "HEAD"]) {
      const res = await fetch(`${server.url}/ping`, { method });
      expect(res.status).toBe(204);
      expect(res.headers.get("x-influxdb-version")).toBe("1.8.10");
    }
    const verbose = await fetch(`${server.url}/ping?verbose=true&u=x&p=anything`);
    expect([verbose.status, await verbose.json()]).toEqual([200, { version: "1.8.10" }]);
    expect((await fetch(`${server.url}/health`)).status).toBe(200); // the Arduino client's InfluxDB 2 check
  });

  test("/query: CREATE DATABASE is 200 and does nothing; any other statement is a clear 400", async () => {
    const q = (query: string, method = "GET") =>
      method === "GET"
        ? send({ method, path: `/query?q=${encodeURIComponent(query)}` })
        : send({
            method,
            path: "/query",
            body: `q=${encodeURIComponent(query)}`,
            headers: { "content-type": "application/x-www-form-urlencoded" },
          });
    for (const method of ["GET", "POST"]) {
      const ok = await q('CREATE DATABASE "telegraf"', method);
      expect([ok.status, ok.json]).toEqual([200, { results: [{ statement_id: 0 }] }]);
      const bad = await q("SELECT * FROM cpu", method);
      expect(bad.status).toBe(400);
      expect(bad.json.error).toContain("does not answer InfluxQL queries");
    }
    const sneaky = await q("CREATE DATABASE x; DROP DATABASE y");
    expect(sneaky.status).toBe(400);
    const noKey = await send({ method: "GET", path: "/query?q=CREATE+DATABASE+x", auth: null });
    expect(noKey.status).toBe(401);
  });
});

describe("broker outage", () => {
  test("503 with Retry-After in InfluxDB's shape (Telegraf retries), then 204 again", async () => {
    await nats.kill();
    try {
      await check(async () => (await fetch(`${server.url}/ready`)).status === 503, { what: "/ready 503" });
      const res = await send({ body: `m,host=outage v=1 ${T}` });
      expect(res.status).toBe(503);
      expect(res.json.code).toBe("unavailable");
      expect(res.headers.get("retry-after")).toBe("1");
    } finally {
      await nats.start();
    }
    await check(async () => (await fetch(`${server.url}/ready`)).status === 200, {
      what: "/ready 200",
      timeoutMs: 30_000,
    });
    expect((await send({ body: `m,host=outage v=1 ${T}` })).status).toBe(204);
  });
});
