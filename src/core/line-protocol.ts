/**
 * The InfluxDB line protocol parser (docs/protocols/influx-line-protocol.md). Pure.
 *
 *   measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
 *
 * Escapes (a backslash before any other character is a literal backslash):
 *   measurement: `\,` `\ ` `\\`;  tag keys, tag values, field keys: `\,` `\=` `\ ` `\\`;
 *   string field values (double-quoted): `\"` `\\`.
 * As InfluxDB 3 reads it: a name may not end with a backslash or hold a tab, and an unescaped `=`
 * in a tag value is part of the value.
 * Lines end at LF (CR LF too) outside a quoted string; blank lines and lines whose first
 * non-blank character is `#` are skipped. Each bad line gets an error with its line number; the
 * other lines are still returned (partial write).
 */
import { convertTimestamp, INT64_MAX, INT64_MIN, type Precision, UINT64_MAX } from "./line-protocol-time.ts";

export type FieldValue =
  | { type: "float"; value: number }
  | { type: "integer"; value: bigint }
  | { type: "unsigned"; value: bigint }
  | { type: "string"; value: string }
  | { type: "boolean"; value: boolean };

export interface LinePoint {
  /** 1-based number of the (first) physical line the point was on. */
  line: number;
  measurement: string;
  /** In the order written; keys are unique. */
  tags: [string, string][];
  /** In the order written; keys are unique. */
  fields: [string, FieldValue][];
  /** Exact epoch nanoseconds. */
  ns: bigint;
  /** Epoch milliseconds (ns floored to milliseconds): the precision the project stores. */
  ms: number;
  /** False when the line had no timestamp and the receive time was used. */
  timestamped: boolean;
}

export interface LineError {
  line: number;
  message: string;
}

export interface ParseOptions {
  precision: Precision;
  /** The receive time, epoch milliseconds: the timestamp of a line without one. */
  receivedAtMs: number;
  /** How many line errors to keep (default MAX_LINE_ERRORS); all are counted. */
  maxErrors?: number;
}

export interface ParseResult {
  points: LinePoint[];
  /** The first `maxErrors` errors, in line order. */
  errors: LineError[];
  /** Bad lines in all: a body of a million bad lines keeps 100 messages, not a million. */
  errorCount: number;
}

/** Errors kept per body by default. */
export const MAX_LINE_ERRORS = 100;

/** Longest string field value, in UTF-8 bytes (64 KiB, InfluxDB 3's limit). */
export const MAX_STRING_FIELD_BYTES = 65_536;
/** How much of a bad line an error message quotes. */
const QUOTE_CHARS = 100;

const UTF8 = new TextEncoder();

class LineSyntaxError extends Error {}

const fail = (message: string): never => {
  throw new LineSyntaxError(message);
};

/** Ends of the lines of `text`: a newline inside a quoted string field does not end its line. */
function scanLine(text: string, start: number): number {
  let i = start;
  let inFields = false;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === "\\" && (text[i + 1] === '"' || text[i + 1] === "\\")) i++;
      else if (c === '"') quoted = false;
    } else if (c === "\n") {
      return i;
    } else if (c === "\\" && i + 1 < text.length && text[i + 1] !== "\n") {
      i++;
    } else if (c === " ") {
      inFields = true;
    } else if (c === "=" && inFields && text[i + 1] === '"') {
      quoted = true;
      i++;
    }
    i++;
  }
  return i;
}

const COMMA = 44;
const SPACE = 32;
const EQUALS = 61;
const BACKSLASH = 92;
const TAB = 9;
const QUOTE = 34;

/**
 * Reads an escaped name (`what`, for errors: a function, so a message is only built for a bad
 * line) up to one of `stops`; returns it and the index of the stop (or the end). As in InfluxDB 3,
 * a name may not contain a tab or end with a backslash. A name without a backslash or a tab (the
 * usual one) is one slice, found by char codes.
 */
function readName(s: string, i: number, stops: string, escapable: string, what: () => string): [string, number] {
  const atEquals = stops.length === 3; // ",= " or ", "
  for (let j = i; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === COMMA || c === SPACE || (atEquals && c === EQUALS)) return [s.slice(i, j), j];
    if (c === BACKSLASH || c === TAB) return readEscapedName(s, i, stops, escapable, what);
  }
  return [s.slice(i), s.length];
}

function readEscapedName(s: string, i: number, stops: string, escapable: string, what: () => string): [string, number] {
  let out = "";
  let from = i;
  while (i < s.length && !stops.includes(s[i]!)) {
    if (s[i] === "\t") fail(`a tab in ${what()}: tabs are not allowed in names`);
    if (s[i] === "\\" && i + 1 < s.length && (escapable.includes(s[i + 1]!) || s[i + 1] === "\\")) {
      out += s.slice(from, i);
      from = i + 1;
      i += 2;
    } else {
      i++;
    }
  }
  out += s.slice(from, i);
  if (out.endsWith("\\")) fail(`${what()} ends with a backslash`);
  return [out, i];
}

const TAG_KEY = () => "a tag key";
const FIELD_KEY = () => "a field key";
const MEASUREMENT = () => "the measurement";

/** Whether `key` is the first element of one of `pairs` (a Set only for many: lines are short). */
function hasKey(pairs: readonly [string, unknown][], key: string, seen: Set<string> | null): boolean {
  if (seen) return seen.has(key);
  for (let k = 0; k < pairs.length; k++) if (pairs[k]![0] === key) return true;
  return false;
}
const MANY = 16;

function readTags(s: string, i: number, tags: [string, string][]): number {
  let seen: Set<string> | null = null;
  while (s.charCodeAt(i) === COMMA) {
    const [key, afterKey] = readName(s, i + 1, ",= ", ",= ", TAG_KEY);
    if (key === "") fail("missing tag key");
    if (s.charCodeAt(afterKey) !== EQUALS) fail(`missing tag value for tag '${key}'`);
    // An unescaped '=' in a tag value is part of it, as InfluxDB 3 reads it.
    const [value, afterValue] = readName(s, afterKey + 1, ", ", ",= ", () => `the value of tag '${key}'`);
    if (value === "") fail(`missing tag value for tag '${key}'`);
    if (hasKey(tags, key, seen)) fail(`duplicate tag '${key}'`);
    tags.push([key, value]);
    if (tags.length === MANY) seen = new Set(tags.map(([k]) => k));
    else seen?.add(key);
    i = afterValue;
  }
  return i;
}

function readString(s: string, i: number, key: string): [FieldValue, number] {
  let out = "";
  let from = i + 1;
  let j = i + 1;
  while (j < s.length && s[j] !== '"') {
    if (s[j] === "\\" && (s[j + 1] === '"' || s[j + 1] === "\\")) {
      out += s.slice(from, j);
      from = j + 1;
      j += 2;
    } else {
      j++;
    }
  }
  if (j >= s.length) fail(`unterminated string in field '${key}'`);
  out += s.slice(from, j);
  if (out.length * 3 > MAX_STRING_FIELD_BYTES && UTF8.encode(out).length > MAX_STRING_FIELD_BYTES) {
    fail(`string field '${key}' is longer than ${MAX_STRING_FIELD_BYTES} bytes`);
  }
  return [{ type: "string", value: out }, j + 1];
}

const FLOAT = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TRUE = new Set(["t", "T", "true", "True", "TRUE"]);
const FALSE = new Set(["f", "F", "false", "False", "FALSE"]);

function bigInteger(digits: string, key: string, min: bigint, max: bigint, kind: string): bigint {
  if (digits.length > 24) fail(`${kind} field '${key}' out of range`);
  const value = BigInt(digits);
  if (value < min || value > max) fail(`${kind} field '${key}' out of range (${min} to ${max})`);
  return value;
}

/** Interprets an unquoted field value. */
export function scalarValue(raw: string, key: string): FieldValue {
  const lastCode = raw.charCodeAt(raw.length - 1);
  if (((lastCode >= 48 && lastCode <= 57) || lastCode === 46) && FLOAT.test(raw)) {
    // the usual field: a float (nothing ending in a digit or '.' is an integer or a boolean)
    const value = Number(raw);
    if (!Number.isFinite(value)) fail(`float field '${key}' out of range`);
    return { type: "float", value };
  }
  const last = raw[raw.length - 1];
  if (last === "i" && /^-?\d+i$/.test(raw)) {
    return { type: "integer", value: bigInteger(raw.slice(0, -1), key, INT64_MIN, INT64_MAX, "integer") };
  }
  if (last === "u" && /^\d+u$/.test(raw)) {
    return { type: "unsigned", value: bigInteger(raw.slice(0, -1), key, 0n, UINT64_MAX, "unsigned integer") };
  }
  if (TRUE.has(raw)) return { type: "boolean", value: true };
  if (FALSE.has(raw)) return { type: "boolean", value: false };
  if (FLOAT.test(raw)) {
    const value = Number(raw);
    if (!Number.isFinite(value)) fail(`float field '${key}' out of range`);
    return { type: "float", value };
  }
  const shown = raw.length > 40 ? `${raw.slice(0, 40)}...` : raw;
  if (/^-?\d+u$/.test(raw)) fail(`invalid unsigned integer '${shown}' in field '${key}': must not be negative`);
  if (/^[A-Za-z]/.test(raw) && !/^(nan|[+-]?inf(inity)?)$/i.test(raw)) {
    fail(`invalid field value '${shown}' in field '${key}': strings must be double-quoted`);
  }
  return fail(`invalid field value '${shown}' in field '${key}'`);
}

function readFields(s: string, i: number, fields: [string, FieldValue][]): number {
  let seen: Set<string> | null = null;
  for (;;) {
    const [key, afterKey] = readName(s, i, ",= ", ",= ", FIELD_KEY);
    if (key === "") fail(afterKey >= s.length && fields.length === 0 ? "missing fields" : "missing field key");
    if (s.charCodeAt(afterKey) !== EQUALS) fail(`missing field value for field '${key}'`);
    let value: FieldValue;
    let end: number;
    if (s.charCodeAt(afterKey + 1) === QUOTE) {
      [value, end] = readString(s, afterKey + 1, key);
      if (end < s.length && s[end] !== "," && s[end] !== " ") fail(`unexpected text after string field '${key}'`);
    } else {
      end = afterKey + 1;
      for (let c = s.charCodeAt(end); end < s.length && c !== COMMA && c !== SPACE; c = s.charCodeAt(++end));
      if (end === afterKey + 1) fail(`missing field value for field '${key}'`);
      value = scalarValue(s.slice(afterKey + 1, end), key);
    }
    if (hasKey(fields, key, seen)) fail(`duplicate field '${key}'`);
    fields.push([key, value]);
    if (fields.length === MANY) seen = new Set(fields.map(([k]) => k));
    else seen?.add(key);
    if (s.charCodeAt(end) !== COMMA) return end;
    i = end + 1;
  }
}

function parseLine(s: string, line: number, opts: ParseOptions): LinePoint {
  const [measurement, afterName] = readName(s, 0, ", ", ", ", MEASUREMENT);
  if (measurement === "") fail("missing measurement");
  const tags: [string, string][] = [];
  let i = readTags(s, afterName, tags);
  if (i >= s.length) fail("missing fields");
  while (s.charCodeAt(i) === SPACE) i++;
  if (i >= s.length) fail("missing fields");
  const fields: [string, FieldValue][] = [];
  i = readFields(s, i, fields);
  while (s.charCodeAt(i) === SPACE) i++;
  if (i >= s.length) {
    const ms = opts.receivedAtMs;
    return { line, measurement, tags, fields, ns: BigInt(ms) * 1_000_000n, ms, timestamped: false };
  }
  let end = i;
  while (end < s.length && s.charCodeAt(end) !== SPACE) end++;
  if (end < s.length && s.slice(end).trim() !== "") fail("unexpected text after the timestamp");
  const time = convertTimestamp(s.slice(i, end), opts.precision);
  if (!time.ok) return fail(time.message);
  return { line, measurement, tags, fields, ns: time.ns, ms: time.ms, timestamped: true };
}

function quote(s: string): string {
  return s.length > QUOTE_CHARS ? `${s.slice(0, QUOTE_CHARS)}...` : s;
}

/** Parses a whole write body (already decoded from UTF-8). */
export function parseLineProtocol(text: string, opts: ParseOptions): ParseResult {
  const points: LinePoint[] = [];
  const errors: LineError[] = [];
  const maxErrors = opts.maxErrors ?? MAX_LINE_ERRORS;
  let errorCount = 0;
  let start = 0;
  let line = 1;
  // A line without a double quote ends at the next LF (only a quoted string holds one): no scan.
  let nextQuote = text.indexOf('"');
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    if (nextQuote >= 0 && nextQuote < start) nextQuote = text.indexOf('"', start);
    const simple = nextQuote < 0 || nextQuote >= end;
    if (!simple) end = scanLine(text, start);
    let raw = text.slice(start, end);
    if (raw.charCodeAt(raw.length - 1) === 13) raw = raw.slice(0, -1);
    const first = raw.charCodeAt(0);
    const s = first === SPACE || first === TAB ? raw.replace(/^[ \t]+/, "") : raw;
    if (s !== "" && s[0] !== "#") {
      try {
        points.push(parseLine(s, line, opts));
      } catch (e) {
        if (!(e instanceof LineSyntaxError)) throw e;
        if (errorCount++ < maxErrors) errors.push({ line, message: `unable to parse '${quote(raw)}': ${e.message}` });
      }
    }
    if (!simple) for (let k = start; k < end; k++) if (text.charCodeAt(k) === 10) line++;
    line++;
    start = end + 1;
  }
  return { points, errors, errorCount };
}
