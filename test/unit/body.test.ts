/** http/body: encodings, limits before and after decoding, UTF-8; on plain Request objects. */
import { describe, expect, test } from "bun:test";
import { deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { Hono } from "hono";
import { z } from "zod";
import { buildApp } from "../../src/http/app.ts";
import { contentCoding, readBody } from "../../src/http/body.ts";
import { HttpError } from "../../src/http/errors.ts";
import { parseJson } from "../../src/http/validate.ts";

const URL_ = "http://test/x";
const request = (body: NonNullable<RequestInit["body"]>, headers: Record<string, string> = {}) =>
  new Request(URL_, { method: "POST", body, headers });
/** A body without Content-Length (what a chunked upload looks like to the handler). */
const streamed = (bytes: Uint8Array, chunk = 1000, headers: Record<string, string> = {}) =>
  request(
    new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += chunk) c.enqueue(bytes.subarray(i, i + chunk));
        c.close();
      },
    }),
    headers,
  );

async function refusal(
  p: Promise<unknown>,
): Promise<{ status: number; code: string; message: string; headers?: Record<string, string>; details?: unknown }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    return { status: err.status, code: err.code, message: err.message, headers: err.headers, details: err.details };
  }
  throw new Error("expected a refusal");
}

const text = JSON.stringify({ device_id: "d", ts: 1, metrics: { t: 1 } });

describe("content codings", () => {
  test.each([
    ["identity", Buffer.from(text)],
    ["gzip", gzipSync(text)],
    ["x-gzip", gzipSync(text)],
    ["GZIP", gzipSync(text)],
    ["deflate", deflateSync(text)],
    ["deflate", deflateRawSync(text)], // raw deflate, as some clients send it
    ["identity, gzip", gzipSync(text)],
  ])("%s is decoded", async (encoding, bytes) => {
    expect(await readBody(request(bytes, { "content-encoding": encoding }), 1 << 20)).toBe(text);
    expect(await readBody(streamed(bytes, 7, { "content-encoding": encoding }), 1 << 20)).toBe(text);
  });

  test.each([["br"], ["zstd"], ["foo"], ["compress"], ["gzip, gzip"], ["gzip, br"]])(
    "%s is 415 naming the supported codings",
    async (encoding) => {
      const r = await refusal(readBody(request(text, { "content-encoding": encoding }), 1 << 20));
      expect(r).toMatchObject({
        status: 415,
        code: "unsupported_encoding",
        details: undefined,
        headers: { "Accept-Encoding": "gzip, deflate" },
      });
      expect(r.message).toContain("supported are gzip, deflate, identity");
      expect(() => contentCoding(encoding)).toThrow(HttpError);
    },
  );

  test("none, empty or identity is the body as sent", () => {
    for (const h of [null, "", " identity ", "identity, identity"]) expect(contentCoding(h)).toBeNull();
  });

  test.each([
    ["gzip", Buffer.from("this is not gzip at all"), "incorrect header check"],
    ["gzip", gzipSync(text).subarray(0, 15), "unexpected end of file"],
    ["deflate", Buffer.from([0xff, 0xff, 0xff, 0xff]), ""],
  ])("a corrupt %s stream is a specific 400", async (encoding, bytes, fragment) => {
    const r = await refusal(readBody(request(bytes, { "content-encoding": encoding }), 1 << 20));
    expect(r).toMatchObject({ status: 400, code: "invalid_encoding" });
    expect(r.message).toContain(`not valid ${encoding} data`);
    expect(r.message).toContain(fragment);
  });
});

describe("limits", () => {
  const max = 10_000;
  const big = Buffer.alloc(max + 1, 0x20);

  test("raw bytes: Content-Length over the limit is refused before the body is read", async () => {
    let pulled = 0;
    const body = new ReadableStream({ pull: (c) => void (pulled++, c.enqueue(new Uint8Array(1000))) });
    const r = await refusal(
      readBody(new Request(URL_, { method: "POST", body, headers: { "content-length": String(max + 1) } }), max),
    );
    expect(r).toMatchObject({
      status: 413,
      code: "body_too_large",
      message: `request body is larger than ${max} bytes`,
    });
    expect(pulled).toBeLessThanOrEqual(1); // the stream's own first pull, if any: nothing read by us
  });

  test("raw bytes without Content-Length: reading stops at the limit", async () => {
    let pulled = 0;
    const endless = new ReadableStream({ pull: (c) => void (pulled++, c.enqueue(new Uint8Array(1000))) });
    const r = await refusal(readBody(request(endless), max));
    expect(r).toMatchObject({ status: 413, code: "body_too_large" });
    expect(pulled).toBeLessThan(15);
    expect(await readBody(streamed(big.subarray(0, max)), max)).toHaveLength(max); // exactly the limit passes
  });

  test("the compressed size is limited too", async () => {
    const incompressible = gzipSync(crypto.getRandomValues(new Uint8Array(max + 100)));
    expect(await refusal(readBody(request(incompressible, { "content-encoding": "gzip" }), max))).toMatchObject({
      status: 413,
      code: "body_too_large",
      message: `request body is larger than ${max} bytes`,
    });
  });

  test("the decoded size is limited: a small gzip of a large body is 413, at exactly the limit it passes", async () => {
    for (const [encoding, pack] of [
      ["gzip", gzipSync],
      ["deflate", deflateSync],
    ] as const) {
      const r = await refusal(readBody(request(pack(big), { "content-encoding": encoding }), max));
      expect(r).toEqual({
        status: 413,
        code: "body_too_large",
        message: `request body is larger than ${max} bytes once ${encoding}-decoded`,
        headers: undefined,
        details: undefined,
      });
      expect(await readBody(request(pack(big.subarray(0, max)), { "content-encoding": encoding }), max)).toHaveLength(
        max,
      );
    }
  });

  test("a zip bomb (64 MiB of zeros, 64 KiB gzipped) stops at the limit, quickly", async () => {
    const bomb = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
    expect(bomb.length).toBeLessThan(100_000);
    const t0 = performance.now();
    expect(await refusal(readBody(request(bomb, { "content-encoding": "gzip" }), 1 << 20))).toMatchObject({
      status: 413,
      code: "body_too_large",
    });
    expect(performance.now() - t0).toBeLessThan(500); // decoding all 64 MiB takes longer; 1 MiB ~ 1 ms
  });
});

describe("UTF-8", () => {
  test.each([
    ["a lone continuation byte", [0x80]],
    ["a truncated sequence", [0xe2, 0x82]],
    ["an overlong encoding", [0xc0, 0xaf]],
    ["a surrogate", [0xed, 0xa0, 0x80]],
    ["Latin-1", [0xe9]],
  ])("%s is a specific 400, not U+FFFD", async (_, bad) => {
    const bytes = Buffer.concat([Buffer.from('{"device_id":"d'), Buffer.from(bad), Buffer.from('","ts":1}')]);
    expect(await refusal(readBody(request(bytes), 1 << 20))).toMatchObject({ status: 400, code: "invalid_utf8" });
    expect(await refusal(readBody(request(gzipSync(bytes), { "content-encoding": "gzip" }), 1 << 20))).toMatchObject({
      status: 400,
      code: "invalid_utf8",
    });
  });

  test("valid multi-byte text passes unchanged", async () => {
    const s = '{"a":"gerät €𝄞 \uFFFD"}';
    expect(await readBody(request(s), 1 << 20)).toBe(s);
    expect(await readBody(streamed(Buffer.from(s), 1), 1 << 20)).toBe(s); // split inside characters
  });
});

describe("in an app: JSON routes read through the same reader, with the app's limit", () => {
  const route = new Hono().post("/echo", async (c) => c.json(await parseJson(z.object({ name: z.string() }), c)));
  const app = buildApp([route], [], () => false, { maxBodyBytes: 100 });
  const call = async (body: NonNullable<RequestInit["body"]>, headers: Record<string, string> = {}) => {
    const res = await app.request("/echo", {
      method: "POST",
      body,
      headers: { "content-type": "application/json", ...headers },
    });
    return { status: res.status, body: (await res.json()) as any, headers: res.headers };
  };

  test("gzip and deflate bodies are parsed", async () => {
    expect(await call(gzipSync('{"name":"gz"}'), { "content-encoding": "gzip" })).toMatchObject({
      status: 200,
      body: { name: "gz" },
    });
    expect(await call(deflateSync('{"name":"df"}'), { "content-encoding": "deflate" })).toMatchObject({
      status: 200,
      body: { name: "df" },
    });
  });

  test("over maxBodyBytes as sent or decoded: the JSON 413; other errors: 415 and 400", async () => {
    const long = JSON.stringify({ name: "x".repeat(100) });
    expect(await call(long)).toMatchObject({
      status: 413,
      body: { error: { code: "body_too_large", message: "request body is larger than 100 bytes" } },
    });
    expect(await call(gzipSync(long), { "content-encoding": "gzip" })).toMatchObject({
      status: 413,
      body: { error: { code: "body_too_large" } },
    });
    const br = await call('{"name":"x"}', { "content-encoding": "br" });
    expect([br.status, br.body.error.code, br.headers.get("accept-encoding")]).toEqual([
      415,
      "unsupported_encoding",
      "gzip, deflate",
    ]);
    expect(await call(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]))).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_utf8" } },
    });
    expect(await call("{nope")).toMatchObject({ status: 400, body: { error: { code: "invalid_json" } } });
  });
});
