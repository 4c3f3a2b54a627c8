/**
 * Request bodies to candidate records. Pure. JSON bodies hold one object or an array of objects;
 * NDJSON bodies hold one object per line, and a bad line rejects only that record.
 */
import type { FieldError } from "../core/record.ts";
import { HttpError } from "../http/errors.ts";

/** `identity`: a suffix of the record's event id (NormalizeOptions.identity), for line protocol. */
export type BodyItem = { index: number; value: unknown; identity?: string } | { index: number; error: FieldError };

export const JSON_TYPES = ["application/json"];
export const NDJSON_TYPES = ["application/x-ndjson", "application/ndjson", "application/jsonl"];

export function bodyKind(contentType: string | undefined): "json" | "ndjson" {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (JSON_TYPES.includes(type)) return "json";
  if (NDJSON_TYPES.includes(type)) return "ndjson";
  throw new HttpError(
    415,
    "unsupported_media_type",
    `Content-Type ${type ? JSON.stringify(type) : "is missing; it"} must be application/json or application/x-ndjson`,
  );
}

function jsonProblem(err: unknown, text: string): string {
  if (/(^|[^A-Za-z"])(-?Infinity|NaN)([^A-Za-z"]|$)/.test(text)) {
    return "NaN and Infinity are not JSON numbers; metric values must be finite numbers";
  }
  return (err as Error).message;
}

export function parseBody(text: string, kind: "json" | "ndjson", maxRecords: number): BodyItem[] {
  if (text.trim() === "")
    throw new HttpError(400, "empty_body", "the request body is empty; send a record, an array of records or NDJSON");
  const items: BodyItem[] = [];
  if (kind === "json") {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, "invalid_json", `body is not valid JSON: ${jsonProblem(err, text)}`);
    }
    if (Array.isArray(value)) {
      if (value.length === 0) throw new HttpError(400, "empty_body", "the array holds no records");
      checkCount(value.length, maxRecords);
      value.forEach((v, index) => {
        items.push({ index, value: v });
      });
    } else if (typeof value === "object" && value !== null) {
      items.push({ index: 0, value });
    } else {
      throw new HttpError(400, "invalid_body", "body must be a JSON object (one record) or an array of records");
    }
    return items;
  }
  const lines = text.split("\n");
  let index = 0;
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === "") continue;
    checkCount(index + 1, maxRecords);
    try {
      items.push({ index, value: JSON.parse(line) });
    } catch (err) {
      items.push({ index, error: { path: "", message: `line ${n + 1} is not valid JSON: ${jsonProblem(err, line)}` } });
    }
    index++;
  }
  return items;
}

function checkCount(count: number, max: number) {
  if (count > max) throw new HttpError(413, "too_many_records", `a request may hold at most ${max} records`);
}
