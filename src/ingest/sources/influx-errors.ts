/**
 * InfluxDB's error bodies, so that its clients read our errors as they read InfluxDB's:
 *   v1 (/write, /query):   {"error": "<message>"}
 *   v2 (/api/v2/write):    {"code": "invalid" | "unauthorized" | "forbidden" | "request too large" | ..., "message": "<message>"}
 *   v3 (/api/v3/write_lp): {"error": "<message>", "data": [{"line_number", "error_message"}]?}
 * Every HttpError of these routes (the shared key middleware's 401/403/429/503, readBody's
 * 413/415/400, admit's 403/429/503) keeps its status and headers (Retry-After) and gets this shape.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { HttpError } from "../../http/errors.ts";

export type Dialect = "v1" | "v2" | "v3";

/** InfluxDB 2's error codes by HTTP status (its influxdb/kit/platform/errors). */
const V2_CODES: Record<number, string> = {
  400: "invalid",
  401: "unauthorized",
  403: "forbidden",
  404: "not found",
  405: "method not allowed",
  413: "request too large",
  415: "unsupported media type",
  422: "unprocessable entity",
  429: "too many requests",
  503: "unavailable",
};

export const dialectOf = (path: string): Dialect =>
  path.startsWith("/api/v2/") ? "v2" : path.startsWith("/api/v3/") ? "v3" : "v1";

export interface LineFault {
  line: number;
  message: string;
}

/** The body of an error in the dialect; `faults`, the bad lines of a write, go where its clients look. */
export function influxErrorBody(dialect: Dialect, status: number, message: string, faults?: readonly LineFault[]) {
  if (dialect === "v2") {
    const body: Record<string, unknown> = { code: V2_CODES[status] ?? "internal error", message };
    if (faults) body.lines = faults;
    return body;
  }
  if (dialect === "v3" && faults)
    return { error: message, data: faults.map((f) => ({ line_number: f.line, error_message: f.message })) };
  return { error: message };
}

export function influxError(
  c: Context,
  status: ContentfulStatusCode,
  message: string,
  opts: { faults?: readonly LineFault[]; headers?: Record<string, string> } = {},
): Response {
  const dialect = dialectOf(c.req.path);
  const headers = { ...opts.headers, "X-Influxdb-Error": message.slice(0, 200).replace(/[^\x20-\x7e]/g, "?") };
  return c.json(influxErrorBody(dialect, status, message, opts.faults), status, headers);
}

function fromHttpError(c: Context, err: unknown): Response {
  if (!(err instanceof HttpError)) throw err;
  return influxError(c, err.status, err.message, { headers: err.headers });
}

/** The key middleware, its HttpErrors in InfluxDB's shape. */
export function influxGuard(inner: MiddlewareHandler<any>): MiddlewareHandler<any> {
  return async function influxAuth(c, next) {
    try {
      return await inner(c, next);
    } catch (err) {
      return fromHttpError(c, err);
    }
  };
}

/** A route handler whose HttpErrors are answered in InfluxDB's shape. */
export function influxHandler<C extends Context, D>(
  fn: (c: C, deps: D) => Promise<Response>,
): (c: C, deps: D) => Promise<Response> {
  return async (c, deps) => {
    try {
      return await fn(c, deps);
    } catch (err) {
      return fromHttpError(c, err);
    }
  };
}
