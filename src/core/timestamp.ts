/**
 * Timestamp parsing and bounds. Pure: "now" is always passed in.
 *
 * Accepted forms:
 *  - RFC 3339 with an explicit offset ("2026-11-22T10:00:00Z", "2026-11-22T11:00:00.123+01:00");
 *    a string without an offset is ambiguous and rejected.
 *  - Epoch milliseconds as a JSON integer.
 * Normalized form: integer epoch milliseconds, UTC. Digits beyond milliseconds are truncated.
 */
import { formatDuration } from "./duration.ts";

export const MIN_TIMESTAMP_MS = Date.UTC(2000, 0, 1); // 2000-01-01T00:00:00Z

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

export type TimestampResult = { ok: true; ms: number } | { ok: false; message: string };

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export function parseRfc3339(text: string): TimestampResult {
  const m = RFC3339.exec(text);
  if (!m) {
    return {
      ok: false,
      message: /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(text)
        ? "timestamp has no UTC offset; add 'Z' or '+hh:mm'"
        : "must be an RFC 3339 timestamp (e.g. 2026-11-22T10:00:00Z) or epoch milliseconds",
    };
  }
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth(year!, month!)) {
    return { ok: false, message: "date does not exist" };
  }
  if (hour! > 23 || minute! > 59 || second! > 59) return { ok: false, message: "time of day out of range" };
  const millis = m[7] ? Number(m[7].padEnd(3, "0").slice(0, 3)) : 0;
  let offsetMin = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return { ok: false, message: "UTC offset out of range" };
    offsetMin = (m[9] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const ms = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!, millis) - offsetMin * 60_000;
  return { ok: true, ms };
}

/** Checks that a normalized timestamp lies in [2000-01-01, now + maxFutureMs]. */
export function checkBounds(ms: number, nowMs: number, maxFutureMs: number): string | null {
  if (ms < MIN_TIMESTAMP_MS) {
    if (ms >= 946_684_800 && ms < 10_000_000_000) {
      return "timestamp is before 2000-01-01; it looks like epoch seconds, send epoch milliseconds";
    }
    return "timestamp is before 2000-01-01T00:00:00Z";
  }
  if (ms > nowMs + maxFutureMs) {
    return `timestamp is more than ${formatDuration(maxFutureMs)} in the future (server time ${new Date(nowMs).toISOString()})`;
  }
  return null;
}

const DAY_MS = 86_400_000;
/** The last day formatted ("YYYY-MM-DDT"): readings come in runs of one day, so the date part is reused. */
let isoDay = Number.NaN;
let isoDayText = "";
const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * Exactly `new Date(ms).toISOString()` ("2026-11-22T10:00:00.005Z"), at about half its cost for
 * times in years 1970–9999 (the date part of the last day is kept; the time of day is arithmetic).
 * Ingest formats one per reading for its event id; test/unit/event-id checks the two agree.
 */
export function toIso(ms: number): string {
  if (!(ms >= 0 && ms < 253_402_300_800_000 && Number.isInteger(ms))) return new Date(ms).toISOString();
  const day = Math.floor(ms / DAY_MS);
  if (day !== isoDay) {
    isoDayText = new Date(day * DAY_MS).toISOString().slice(0, 11);
    isoDay = day;
  }
  let t = ms - day * DAY_MS;
  const milli = t % 1000;
  t = (t - milli) / 1000;
  const sec = t % 60;
  t = (t - sec) / 60;
  const min = t % 60;
  return `${isoDayText}${pad2((t - min) / 60)}:${pad2(min)}:${pad2(sec)}.${pad3(milli)}Z`;
}
