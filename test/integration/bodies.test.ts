/**
 * Request bodies over real HTTP (real server, nats-server, PostgreSQL): gzip and deflate bodies
 * are stored like plain ones (also from curl), a zip bomb gets 413 quickly with bounded memory,
 * unknown encodings 415, corrupt streams and invalid UTF-8 a specific 400, any oversize body the
 * JSON 413 (never Bun's empty one), and reserved metric names a per-record error.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGzip, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { createSql, type Sql } from "../../src/db/client.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { ndjson, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

const MAX_BODY = 1024 * 1024; // the default TELEMETRY_MAX_BODY
let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;
let nc: NatsConnection;
let dir: string;

beforeAll(async () => {
  nats = await startNats();
  const databaseUrl = await freshDatabase("bodies");
  server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: databaseUrl, TELEMETRY_MAX_BODY: "1MiB" });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
  nc = await connect({ servers: nats.url });
  dir = mkdtempSync(join(tmpdir(), "telemetry-bodies-"));
}, 60_000);

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await nc?.close();
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const published = async () => (await (await jetstreamManager(nc)).streams.info("TELEMETRY")).state.messages;
const stored = async (device: string) =>
  (
    await sql`SELECT ts, metrics, attributes FROM readings WHERE tenant = 'acme' AND device_id = ${device} ORDER BY ts`
  ).map((r) => ({ ts: (r.ts as Date).getTime(), metrics: r.metrics, attributes: r.attributes }));

async function send(
  body: NonNullable<RequestInit["body"]>,
  headers: Record<string, string> = {},
  path = "/api/v1/telemetry",
) {
  const res = await fetch(`${server.url}${path}`, {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${TEST_KEY}`, "content-type": "application/json", ...headers },
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const records = (device: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ device_id: device, ts: BASE_TS + i * 1000, metrics: { t: i } }));
const rows = (device: string, n: number) =>
  records(device, n).map((r) => ({ ts: r.ts, metrics: r.metrics, attributes: null }));

describe("compressed bodies are stored like plain ones", () => {
  test.each([
    ["gzip", "application/json", "gz-json", (s: string) => gzipSync(s)],
    ["x-gzip", "application/json", "xgz-json", (s: string) => gzipSync(s)],
    ["deflate", "application/json", "defl-json", (s: string) => deflateSync(s)],
    ["deflate", "application/x-ndjson", "rawdefl-ndjson", (s: string) => deflateRawSync(s)],
    ["gzip", "application/x-ndjson", "gz-ndjson", (s: string) => gzipSync(s)],
  ])("Content-Encoding %s, %s", async (encoding, type, device, pack) => {
    const recs = records(device, 20);
    const text = type === "application/json" ? JSON.stringify(recs) : ndjson(recs);
    const res = await send(pack(text), { "content-encoding": encoding, "content-type": type });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(20);
    await check(async () => (await stored(device)).length === 20, { what: `${device} stored` });
    expect(await stored(device)).toEqual(rows(device, 20));
  });

  test("from curl: a gzipped file, sent with Content-Length and sent chunked", async () => {
    for (const [device, extra] of [
      ["curl-gz", []],
      ["curl-gz-chunked", ["-H", "Transfer-Encoding: chunked"]],
    ] as const) {
      const file = join(dir, `${device}.json.gz`);
      writeFileSync(file, gzipSync(JSON.stringify(records(device, 5))));
      const curl = Bun.spawn(
        [
          "curl",
          "-sS",
          "-X",
          "POST",
          `${server.url}/api/v1/telemetry`,
          "-H",
          `Authorization: Bearer ${TEST_KEY}`,
          "-H",
          "Content-Type: application/json",
          "-H",
          "Content-Encoding: gzip",
          ...extra,
          "--data-binary",
          `@${file}`,
          "-w",
          "\n%{http_code}",
        ],
        { stdout: "pipe", stderr: "pipe" },
      );
      const [out, code] = [await new Response(curl.stdout).text(), await curl.exited];
      expect(code).toBe(0);
      const [body, status] = out.split("\n");
      expect(status).toBe("202");
      expect(JSON.parse(body!).accepted).toBe(5);
      await check(async () => (await stored(device)).length === 5, { what: `${device} stored` });
      expect(await stored(device)).toEqual(rows(device, 5));
    }
  });
});

describe("refused bodies publish nothing", () => {
  const good = JSON.stringify(records("refused", 1));
  test.each([
    [
      "br (used to be read as plain text)",
      { body: good, encoding: "br" },
      415,
      "unsupported_encoding",
      "supported are gzip, deflate, identity",
    ],
    ["zstd", { body: good, encoding: "zstd" }, 415, "unsupported_encoding", '"zstd" is not supported'],
    ["foo", { body: good, encoding: "foo" }, 415, "unsupported_encoding", ""],
    [
      "corrupt gzip",
      { body: Buffer.from("definitely not gzip"), encoding: "gzip" },
      400,
      "invalid_encoding",
      "not valid gzip data",
    ],
    [
      "truncated gzip",
      { body: gzipSync(good).subarray(0, 20), encoding: "gzip" },
      400,
      "invalid_encoding",
      "unexpected end of file",
    ],
    [
      "invalid UTF-8 in an attribute (used to be stored as U+FFFD)",
      {
        body: Buffer.from(good.replace('"metrics"', '"attributes":{"fw":"1.\u00ff"},"metrics"'), "latin1"),
        encoding: "",
      },
      400,
      "invalid_utf8",
      "not valid UTF-8",
    ],
    [
      "invalid UTF-8, gzipped",
      { body: gzipSync(Buffer.from(good.replace("refused", "refus\u00e9"), "latin1")), encoding: "gzip" },
      400,
      "invalid_utf8",
      "",
    ],
  ])("%s", async (_, req, status, code, fragment) => {
    const before = await published();
    const res = await send(req.body, req.encoding ? { "content-encoding": req.encoding } : {});
    expect([res.status, res.body?.error?.code]).toEqual([status, code]);
    expect(res.body.error.message).toContain(fragment);
    if (status === 415) {
      expect(res.headers.get("accept-encoding")).toBe("gzip, deflate");
    }
    expect(await published()).toBe(before);
  });
});

describe("limits", () => {
  let bomb: Buffer;
  beforeAll(async () => {
    // 1 GiB of zeros, gzipped as it is produced (never 1 GiB in memory here): ~1 MB, under the limit.
    const gz = createGzip({ level: 9 });
    const parts: Buffer[] = [];
    gz.on("data", (d: Buffer) => parts.push(d));
    const ended = new Promise((resolve) => gz.on("end", resolve));
    const zeros = Buffer.alloc(1 << 20);
    for (let i = 0; i < 1024; i++) if (!gz.write(zeros)) await new Promise((resolve) => gz.once("drain", resolve));
    gz.end();
    await ended;
    bomb = Buffer.concat(parts);
  }, 60_000);

  test("a zip bomb (1 GiB of zeros in ~1 MB of gzip) gets 413 quickly; memory stays far below its size", async () => {
    expect(bomb.length).toBeLessThan(MAX_BODY); // the compressed size passes: the decoded size must stop it
    Bun.gc(true);
    const rss0 = process.memoryUsage().rss;
    const before = await published();
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const res = await send(bomb, { "content-encoding": "gzip" });
      expect([res.status, res.body.error.code]).toEqual([413, "body_too_large"]);
      expect(res.body.error.message).toBe(`request body is larger than ${MAX_BODY} bytes once gzip-decoded`);
      expect(performance.now() - t0).toBeLessThan(2_000); // decoding all of it takes seconds
    }
    const grownMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
    expect(grownMiB).toBeLessThan(64); // the bomb is 1,024 MiB
    expect(await published()).toBe(before);
  });

  test("a compressed body over the limit is 413 too", async () => {
    const noise = gzipSync(crypto.getRandomValues(new Uint8Array(MAX_BODY + 4096)));
    const res = await send(noise, { "content-encoding": "gzip" });
    expect([res.status, res.body.error]).toEqual([
      413,
      { code: "body_too_large", message: `request body is larger than ${MAX_BODY} bytes` },
    ]);
  });

  // Bun's own limit used to answer these with an empty 413 (no JSON) before any route ran.
  /** A JSON body of exactly `bytes` bytes. */
  const big = (bytes: number) => {
    const json = (n: number) =>
      JSON.stringify([{ device_id: "big", ts: BASE_TS, metrics: { t: 1 }, attributes: { pad: "x".repeat(n) } }]);
    const text = json(bytes - json(0).length);
    expect(text.length).toBe(bytes);
    return text;
  };
  test.each([
    ["3 MiB with Content-Length", () => big(3 << 20)],
    ["3 MiB chunked", () => new Blob([big(3 << 20)]).stream()],
    ["1 MiB + 1 byte", () => big(MAX_BODY + 1)],
  ])("ingest: %s gets the JSON 413", async (_, body) => {
    const res = await send(body());
    expect(res.status).toBe(413);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(res.body.error).toEqual({
      code: "body_too_large",
      message: `request body is larger than ${MAX_BODY} bytes`,
    });
  });

  test("other routes with a body: the same JSON 413 (a 5 MiB rule), and gzip works there too", async () => {
    const res = await send(JSON.stringify({ name: "x".repeat(5 << 20) }), {}, "/api/v1/rules");
    expect([res.status, res.body?.error?.code]).toEqual([413, "body_too_large"]);
    const rule = {
      name: "gz rule",
      metric: "t",
      severity: "warning",
      condition: { type: "above_threshold", threshold: 10, clear: 5 },
    };
    const ok = await send(gzipSync(JSON.stringify(rule)), { "content-encoding": "gzip" }, "/api/v1/rules");
    expect([ok.status, ok.body.name]).toEqual([201, "gz rule"]);
  });
});

describe("reserved names", () => {
  test("a __proto__ or constructor metric/attribute name rejects its record with a specific error; the others are stored", async () => {
    const t = (i: number) => BASE_TS + i * 1000;
    const body = `[{"device_id":"proto","ts":${t(0)},"metrics":{"t":0,"__proto__":1}},{"device_id":"proto","ts":${t(1)},"metrics":{"t":1},"attributes":{"constructor":"x"}},{"device_id":"proto","ts":${t(2)},"metrics":{"prototype":2}},{"device_id":"proto","ts":${t(3)},"metrics":{"t":3}}]`;
    const res = await send(body);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 1, rejected: 3 });
    expect(
      res.body.results.map((r: { status: string; errors?: Array<{ path: string }> }) => [
        r.status,
        r.errors?.map((e) => e.path),
      ]),
    ).toEqual([
      ["rejected", ["metrics.__proto__"]],
      ["rejected", ["attributes.constructor"]],
      ["rejected", ["metrics.prototype"]],
      ["accepted", undefined],
    ]);
    expect(res.body.results[0].errors[0].message).toContain("'__proto__' is a reserved name");
    await check(async () => (await stored("proto")).length === 1, { what: "the valid record stored" });
    expect(await stored("proto")).toEqual([{ ts: t(3), metrics: { t: 3 }, attributes: null }]);
  });
});
