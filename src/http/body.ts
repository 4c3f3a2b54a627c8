/**
 * Request bodies, bounded. Every route that reads a body reads it here (Bun's own body limit is
 * set out of the way, so that every 413 is this JSON one):
 *   1. Content-Encoding: identity, gzip (x-gzip) or deflate (zlib or raw), one coding; else 415.
 *   2. The raw bytes: Content-Length checked up front, then counted while reading (chunked
 *      bodies); over the limit is 413 before more is read.
 *   3. Decoding, with the same limit on the decoded size: zlib stops as soon as its output passes
 *      it (maxOutputLength), so a zip bomb costs the limit, not its size. A corrupt stream is 400.
 *   4. The text must be UTF-8 (a fatal TextDecoder, native): 400 instead of silent U+FFFD.
 */
import { promisify } from "node:util";
import { gunzip, inflate, inflateRaw } from "node:zlib";
import { HttpError } from "./errors.ts";

/** TELEMETRY_MAX_BODY's default, for apps built without a configuration (tests). */
export const DEFAULT_MAX_BODY = 1024 * 1024;
export const SUPPORTED_ENCODINGS = ["gzip", "deflate", "identity"] as const;

export type Coding = "gzip" | "deflate" | null;

const supported = SUPPORTED_ENCODINGS.join(", ");

/** The one content coding of a request (null: none or identity). */
export function contentCoding(header: string | null | undefined): Coding {
  if (header === null || header === undefined || header === "") return null; // most requests: no arrays
  const codings = (header ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "" && s !== "identity");
  if (codings.length === 0) return null;
  // Accept-Encoding on a 415 is how HTTP names the codings a server takes (RFC 9110, 12.5.3).
  const refuse = (why: string) =>
    new HttpError(415, "unsupported_encoding", `${why}; supported are ${supported}`, undefined, {
      "Accept-Encoding": "gzip, deflate",
    });
  if (codings.length > 1)
    throw refuse(`Content-Encoding ${JSON.stringify(header)} applies ${codings.length} codings, only one is supported`);
  const coding = codings[0] === "x-gzip" ? "gzip" : codings[0]!;
  if (coding === "gzip" || coding === "deflate") return coding;
  throw refuse(`Content-Encoding ${JSON.stringify(coding)} is not supported`);
}

const tooLarge = (max: number, decoded?: string) =>
  new HttpError(
    413,
    "body_too_large",
    decoded
      ? `request body is larger than ${max} bytes once ${decoded}-decoded`
      : `request body is larger than ${max} bytes`,
  );

/** The raw (still encoded) bytes, at most `max`. */
export async function readRaw(req: Request, max: number): Promise<Uint8Array> {
  const length = req.headers.get("content-length");
  if (length !== null && !req.headers.has("transfer-encoding")) {
    if (Number(length) > max) throw tooLarge(max);
    // The HTTP parser holds the body to its Content-Length: one native read, bounded.
    const bytes = new Uint8Array(await req.arrayBuffer());
    if (bytes.byteLength > max) throw tooLarge(max);
    return bytes;
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      reader.cancel().catch(() => {});
      throw tooLarge(max);
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const inflateRawAsync = promisify(inflateRaw);

/** RFC 1950 header (what "deflate" means); some clients send raw RFC 1951 data instead. */
const zlibHeader = (b: Uint8Array) => b.length >= 2 && (b[0]! & 0x0f) === 8 && ((b[0]! << 8) | b[1]!) % 31 === 0;

/** Decodes `raw`; the decoded size is limited to `max` too (zlib stops there). */
export async function decode(raw: Uint8Array, coding: Coding, max: number): Promise<Uint8Array> {
  if (coding === null || raw.byteLength === 0) return raw;
  const run = coding === "gzip" ? gunzipAsync : zlibHeader(raw) ? inflateAsync : inflateRawAsync;
  try {
    return await run(raw, { maxOutputLength: Math.max(1, max) });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw tooLarge(max, coding);
    throw new HttpError(400, "invalid_encoding", `the body is not valid ${coding} data: ${(err as Error).message}`);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function utf8Text(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new HttpError(400, "invalid_utf8", "the body is not valid UTF-8 (JSON and NDJSON bodies must be UTF-8)");
  }
}

/** A request's body as text: decoded, limited to `max` bytes before and after decoding, UTF-8. */
export async function readBody(req: Request, max: number): Promise<string> {
  const coding = contentCoding(req.headers.get("content-encoding"));
  return utf8Text(await decode(await readRaw(req, max), coding, max));
}
