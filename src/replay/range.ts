/** Where a replay starts and ends: a stream sequence, an RFC 3339 time, or a duration ago ("6h"). Pure. */
import { parseDuration } from "../core/duration.ts";
import { parseRfc3339 } from "../core/timestamp.ts";

/** `ago`: the text of a relative start ("10m"), which may begin before the stream's first message (see bounds in replay.ts). */
export type Point = { seq: number } | { time: number; ago?: string };

export function parsePoint(text: string, nowMs: number): Point | { error: string } {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { seq: Number(t) };
  const ago = /^\d+(\.\d+)?\s*(ms|s|m|h|d|w)$/.test(t) ? parseDuration(t) : null;
  if (ago !== null) return { time: nowMs - ago, ago: t };
  const r = parseRfc3339(t);
  if (r.ok) return { time: r.ms };
  return {
    error: `${JSON.stringify(text)} is not a stream sequence, an RFC 3339 time (2026-11-22T10:00:00Z) or a duration ago (6h, 30m, 2d)`,
  };
}

export function describePoint(p: Point): string {
  return "seq" in p ? `sequence ${p.seq}` : new Date(p.time).toISOString();
}
