/**
 * Line-protocol timestamps and precisions. Pure.
 *
 * A timestamp is an integer count of `precision` units since the Unix epoch. It is kept exactly
 * as a nanosecond BigInt (no JS number can hold nanoseconds since 1970) that must fit int64, as
 * InfluxDB requires; the project stores epoch milliseconds, so `ms` is the nanoseconds divided by
 * 1e6 rounded toward negative infinity (floor): finer digits are dropped, never rounded up, as
 * the JSON path drops digits beyond milliseconds of an RFC 3339 time.
 */

export type Precision = "ns" | "us" | "ms" | "s" | "m" | "h" | "auto";

/** Which write API a precision parameter came from: each accepts its own spellings. */
export type PrecisionDialect = "v1" | "v2" | "v3";

const UNITS: Record<Exclude<Precision, "auto">, bigint> = {
  ns: 1n,
  us: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** The spellings of each dialect (InfluxDB 1 `/write`, 2 `/api/v2/write`, 3 `/api/v3/write_lp`). */
const SPELLINGS: Record<PrecisionDialect, Record<string, Precision>> = {
  v1: { n: "ns", ns: "ns", u: "us", us: "us", ms: "ms", s: "s", m: "m", h: "h" },
  v2: { ns: "ns", us: "us", ms: "ms", s: "s" },
  v3: {
    auto: "auto",
    nanosecond: "ns",
    microsecond: "us",
    millisecond: "ms",
    second: "s",
    ns: "ns",
    us: "us",
    ms: "ms",
    s: "s",
  },
};

const DEFAULTS: Record<PrecisionDialect, Precision> = { v1: "ns", v2: "ns", v3: "auto" };

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
export const UINT64_MAX = 2n ** 64n - 1n;

export type PrecisionResult = { ok: true; precision: Precision } | { ok: false; message: string };

/** Parses a `precision` query parameter; absent or empty means the dialect's default. */
export function parsePrecision(text: string | null | undefined, dialect: PrecisionDialect): PrecisionResult {
  if (text === null || text === undefined || text === "") return { ok: true, precision: DEFAULTS[dialect] };
  const precision = Object.hasOwn(SPELLINGS[dialect], text) ? SPELLINGS[dialect][text] : undefined;
  if (precision) return { ok: true, precision };
  const allowed = Object.keys(SPELLINGS[dialect]).join(", ");
  return { ok: false, message: `unknown precision '${text.slice(0, 32)}': use one of ${allowed}` };
}

/**
 * InfluxDB 3's `auto`: the unit is guessed from the magnitude, as its server does (a value below
 * 5e9 is seconds, below 5e12 milliseconds, below 5e15 microseconds, else nanoseconds).
 */
export function guessPrecision(value: bigint): Exclude<Precision, "auto"> {
  const magnitude = value < 0n ? -value : value;
  if (magnitude < 5_000_000_000n) return "s";
  if (magnitude < 5_000_000_000_000n) return "ms";
  if (magnitude < 5_000_000_000_000_000n) return "us";
  return "ns";
}

export type TimeResult = { ok: true; ns: bigint; ms: number } | { ok: false; message: string };

const INTEGER = /^-?\d{1,40}$/;

/** Epoch milliseconds of exact nanoseconds, rounded toward negative infinity. */
export function nsToMs(ns: bigint): number {
  const q = ns / 1_000_000n;
  return Number(ns < 0n && q * 1_000_000n !== ns ? q - 1n : q);
}

/** Converts a timestamp's digits in `precision` units to exact nanoseconds and epoch milliseconds. */
export function convertTimestamp(text: string, precision: Precision): TimeResult {
  if (!INTEGER.test(text)) return { ok: false, message: `invalid timestamp '${text.slice(0, 48)}': not an integer` };
  const value = BigInt(text);
  const unit = UNITS[precision === "auto" ? guessPrecision(value) : precision];
  const ns = value * unit;
  if (ns < INT64_MIN || ns > INT64_MAX) {
    return {
      ok: false,
      message: `timestamp '${text.slice(0, 48)}' out of range: in precision ${precision} it must fit int64 nanoseconds (years 1677-2262)`,
    };
  }
  return { ok: true, ns, ms: nsToMs(ns) };
}
