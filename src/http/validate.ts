/** Request validation with zod: one error shape for every route (400 bad query/JSON, 422 bad body). */
import type { Context } from "hono";
import { z } from "zod";
import { parseRfc3339 } from "../core/timestamp.ts";
import { DEFAULT_MAX_BODY, readBody } from "./body.ts";
import { HttpError } from "./errors.ts";

export function issuesOf(error: z.ZodError) {
  return error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
}

export function parseQuery<T extends z.ZodType>(schema: T, c: Context): z.output<T> {
  const r = schema.safeParse(c.req.query());
  if (!r.success) throw new HttpError(400, "invalid_query", "invalid query parameters", issuesOf(r.error));
  return r.data;
}

export async function parseJson<T extends z.ZodType>(schema: T, c: Context): Promise<z.output<T>> {
  const text = await readBody(c.req.raw, c.get("maxBodyBytes") ?? DEFAULT_MAX_BODY);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "invalid_json", `body is not valid JSON: ${(err as Error).message}`);
  }
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(422, "invalid_body", "the request body is invalid", issuesOf(r.error));
  return r.data;
}

/** A time in a query string: RFC 3339 with offset, or epoch milliseconds. */
export const timeParam = z.string().transform((text, ctx) => {
  if (/^\d+$/.test(text)) return new Date(Number(text));
  const r = parseRfc3339(text);
  if (!r.ok) {
    ctx.addIssue({ code: "custom", message: r.message });
    return z.NEVER;
  }
  return new Date(r.ms);
});

export const limitParam = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);

export const uuidParam = (c: Context, name = "id"): string => {
  const v = c.req.param(name) ?? "";
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v))
    throw new HttpError(404, "not_found", `no such ${name === "id" ? "resource" : name}`);
  return v.toLowerCase();
};
