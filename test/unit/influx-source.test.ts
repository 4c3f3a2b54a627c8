/**
 * The line-protocol source's HTTP surface without a broker (app.request): where the key is read
 * from, InfluxDB-shaped errors per dialect, precision checked before anything is read, /ping,
 * /query, 405; and the per-tenant mapping merge. Writes that reach the broker are in
 * test/integration/line-protocol.test.ts and influx-clients.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { DEFAULT_LINE_MAPPING } from "../../src/core/line-protocol-map.ts";
import type { TenantSettings } from "../../src/core/tenant.ts";
import { onError } from "../../src/http/errors.ts";
import { mountInflux, onlyCreateDatabase } from "../../src/ingest/sources/influx.ts";
import { type InfluxDeps, mappingFor } from "../../src/ingest/sources/influx-write.ts";
import { fixedKeys } from "../helpers/keys.ts";

const KEY = "unit-key-0123456789";
// No broker, registry or limiter: every request here is answered before admission.
const deps = {
  options: { maxBodyBytes: 1024, lineProtocol: DEFAULT_LINE_MAPPING },
} as unknown as InfluxDeps;
const app = new Hono();
app.onError(onError);
app.route("/", mountInflux(fixedKeys({ [KEY]: "acme" }), deps));

const call = async (path: string, init: RequestInit = {}) => {
  const res = await app.request(path, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
};
const post = (path: string, authorization?: string, body = "m,host=a v=1") =>
  call(path, { method: "POST", body, headers: authorization ? { authorization } : {} });

describe("where the key is", () => {
  const badPrecision = "/api/v2/write?precision=xs"; // reached only once the key is accepted: 400
  test("Token, Bearer, Basic (the password), ?p= — each case-insensitive scheme", async () => {
    const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
    for (const auth of [`Token ${KEY}`, `token ${KEY}`, `Bearer ${KEY}`, basic("telegraf", KEY), basic("", KEY)])
      expect((await post(badPrecision, auth)).status).toBe(400);
    expect((await post(`/write?u=x&p=${KEY}&precision=xs`)).status).toBe(400);
  });

  test("missing, malformed or unknown: 401 in the dialect's shape", async () => {
    expect(await post("/api/v2/write")).toMatchObject({ status: 401, json: { code: "unauthorized" } });
    expect((await post("/write")).json).toEqual({
      error: "missing credentials: send Authorization: Token <api key> (or the api key as the password)",
    });
    expect((await post("/api/v2/write", `Basic ${Buffer.from("no-colon").toString("base64")}`)).json.message).toContain(
      "Basic credentials must be user:password",
    );
    expect((await post("/api/v2/write", "Token wrong")).json).toEqual({
      code: "unauthorized",
      message: "unknown or revoked API key",
    });
    expect((await post("/api/v3/write_lp", "Digest x")).json.error).toContain("must be 'Token <api key>'");
  });
});

describe("errors before admission", () => {
  const auth = `Token ${KEY}`;
  test("precision per API; a body over the limit is 413 'request too large'", async () => {
    expect((await post("/api/v2/write?precision=h", auth)).json.message).toBe(
      "unknown precision 'h': use one of ns, us, ms, s",
    );
    // v1 has h: the body is parsed (and its bad line reported) instead
    expect((await post("/write?precision=h", auth, "garbage")).json.error).toStartWith(
      "no line stored: all 1 rejected",
    );
    expect((await post("/api/v3/write_lp?precision=u", auth)).json.error).toContain("use one of auto, nanosecond");
    const big = await post("/api/v2/write", auth, "x".repeat(2000));
    expect([big.status, big.json.code]).toEqual([413, "request too large"]);
    expect(big.headers.get("x-influxdb-error")).toBe("request body is larger than 1024 bytes");
  });

  test("other methods are 405 with Allow; /ping needs no key; /query answers CREATE DATABASE only", async () => {
    const get = await call("/api/v2/write");
    expect([get.status, get.headers.get("allow"), get.json.code]).toEqual([405, "POST", "method not allowed"]);
    expect((await call("/query", { method: "DELETE" })).headers.get("allow")).toBe("GET, POST");
    const ping = await call("/ping");
    expect([ping.status, ping.headers.get("x-influxdb-version")]).toEqual([204, "1.8.10"]);
    const q = await call(`/query?q=${encodeURIComponent("CREATE DATABASE telegraf")}`, {
      headers: { authorization: auth },
    });
    expect(q.json).toEqual({ results: [{ statement_id: 0 }] });
    expect((await call("/query", { headers: { authorization: auth } })).json).toEqual({
      error: 'missing required parameter "q"',
    });
  });

  test("onlyCreateDatabase", () => {
    for (const q of [
      'CREATE DATABASE "telegraf"',
      "create database x",
      "CREATE DATABASE a; CREATE DATABASE b;",
      'CREATE DATABASE "a b" WITH DURATION 1d',
    ])
      expect([q, onlyCreateDatabase(q)]).toEqual([q, true]);
    for (const q of [
      "",
      "SHOW DATABASES",
      "CREATE DATABASE x; DROP DATABASE y",
      "SELECT 1; CREATE DATABASE x",
      "CREATE DATABASE",
    ])
      expect([q, onlyCreateDatabase(q)]).toEqual([q, false]);
  });
});

test("a tenant's own mapping settings replace the server's one by one", () => {
  const tenant = { lineProtocol: { deviceTags: ["serial"] } } as unknown as TenantSettings;
  expect(mappingFor(DEFAULT_LINE_MAPPING, tenant)).toEqual({ ...DEFAULT_LINE_MAPPING, deviceTags: ["serial"] });
  expect(mappingFor(DEFAULT_LINE_MAPPING, { lineProtocol: null } as unknown as TenantSettings)).toBe(
    DEFAULT_LINE_MAPPING,
  );
});
