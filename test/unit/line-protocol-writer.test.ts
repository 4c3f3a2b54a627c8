/**
 * The parser checked against a real writer: random points (names full of characters that need
 * escaping, every field type, timestamps over all of int64) serialized by the official InfluxDB
 * JavaScript client's `Point` must parse back to exactly the same point.
 *
 * Left out of the generated names, because the writer cannot express them in line protocol:
 * backslashes (it does not escape them, so `a\,` is ambiguous), LF/CR/TAB (it writes `\n`, which
 * the protocol does not define), a measurement starting with `#` (a comment line) and the name
 * `__proto__` (the writer keeps fields in a plain object). Empty tag values are dropped by the
 * writer, so they are not generated either.
 */
import { describe, expect, test } from "bun:test";
import { dateToProtocolTimestamp, Point } from "@influxdata/influxdb-client";
import fc from "fast-check";
import { type FieldValue, parseLineProtocol } from "../../src/core/line-protocol.ts";
import { INT64_MAX, INT64_MIN, UINT64_MAX } from "../../src/core/line-protocol-time.ts";

const RX = Date.UTC(2026, 10, 22);
const runs = { numRuns: 1_000 };

const char = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("a", "Z", "0", "_", "-", ".") },
  { weight: 3, arbitrary: fc.constantFrom(",", " ", "=", '"', "#", "'") },
  { weight: 1, arbitrary: fc.constantFrom("é", "⚡", "🚀", "€") },
);
const name = fc.array(char, { minLength: 1, maxLength: 8 }).map((cs) => cs.join(""));
const key = name.filter((k) => k !== "__proto__");
const measurement = name.filter((m) => !m.startsWith("#"));

const field: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => ({ type: "float" as const, value: v })),
  fc.maxSafeInteger().map((v) => ({ type: "integer" as const, value: BigInt(v) })),
  fc.bigInt({ min: 0n, max: UINT64_MAX }).map((v) => ({ type: "unsigned" as const, value: v })),
  fc.boolean().map((v) => ({ type: "boolean" as const, value: v })),
  fc.string({ unit: "grapheme", maxLength: 20 }).map((v) => ({ type: "string" as const, value: v })),
  fc
    .array(fc.constantFrom("\\", '"', "\n", "\r", "x", " ", ",", "="), { maxLength: 12 })
    .map((cs) => ({ type: "string" as const, value: cs.join("") })),
);

const point = fc.record({
  measurement,
  tags: fc.uniqueArray(fc.tuple(key, name), { selector: ([k]) => k, maxLength: 4 }),
  fields: fc.uniqueArray(fc.tuple(key, field), { selector: ([k]) => k, minLength: 1, maxLength: 5 }),
  ns: fc.option(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), { nil: undefined }),
});

type Generated = typeof point extends fc.Arbitrary<infer T> ? T : never;

function write(g: Generated): string {
  const p = new Point(g.measurement);
  for (const [k, v] of g.tags) p.tag(k, v);
  for (const [k, f] of g.fields) {
    if (f.type === "float") p.floatField(k, f.value);
    else if (f.type === "integer") p.intField(k, Number(f.value));
    else if (f.type === "unsigned") p.uintField(k, f.value.toString());
    else if (f.type === "boolean") p.booleanField(k, f.value);
    else p.stringField(k, f.value);
  }
  p.timestamp(g.ns === undefined ? "" : g.ns.toString());
  const line = p.toLineProtocol();
  if (line === undefined) throw new Error("the writer wrote nothing");
  return line;
}

/** What the writer means: tags and fields sorted by key (it sorts them), -0 written as 0. */
function expected(g: Generated) {
  const byKey = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  return {
    measurement: g.measurement,
    tags: [...g.tags].sort(byKey),
    fields: [...g.fields]
      .map(([k, f]): [string, FieldValue] => [k, f.type === "float" && Object.is(f.value, -0) ? { ...f, value: 0 } : f])
      .sort(byKey),
    ns: g.ns ?? BigInt(RX) * 1_000_000n,
    timestamped: g.ns !== undefined,
  };
}

describe("line protocol written by @influxdata/influxdb-client's Point", () => {
  test("one point parses back to exactly what was written", () => {
    fc.assert(
      fc.property(point, (g) => {
        const r = parseLineProtocol(write(g), { precision: "ns", receivedAtMs: RX });
        expect(r.errors).toEqual([]);
        expect(r.points).toHaveLength(1);
        const { line: _, ms, ...got } = r.points[0]!;
        expect(got).toEqual(expected(g));
        expect(BigInt(ms) * 1_000_000n <= got.ns && got.ns < BigInt(ms + 1) * 1_000_000n).toBe(true);
      }),
      runs,
    );
  });

  test("a batch joined with LF or CRLF parses back point by point, with line numbers", () => {
    fc.assert(
      fc.property(fc.array(point, { minLength: 1, maxLength: 8 }), fc.constantFrom("\n", "\r\n"), (gs, eol) => {
        const lines = gs.map(write);
        const r = parseLineProtocol(lines.join(eol) + eol, { precision: "ns", receivedAtMs: RX });
        expect(r.errors).toEqual([]);
        expect(r.points.map(({ line: _, ms: __, ...p }) => p)).toEqual(gs.map(expected));
        let line = 1;
        for (const [i, text] of lines.entries()) {
          expect(r.points[i]!.line).toBe(line);
          line += text.split("\n").length; // a string field may hold newlines
        }
      }),
      { numRuns: 300 },
    );
  });

  test("a Date written in each precision by the client's own conversion comes back as that instant", () => {
    const precisions = ["ns", "us", "ms", "s"] as const;
    fc.assert(
      fc.property(
        fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2200-01-01T00:00:00Z"), noInvalidDate: true }),
        fc.constantFrom(...precisions),
        (date, precision) => {
          const text = new Point("m")
            .floatField("f", 1)
            .timestamp(date)
            .toLineProtocol({ convertTime: (v) => dateToProtocolTimestamp[precision](v as Date) });
          const r = parseLineProtocol(text!, { precision, receivedAtMs: RX });
          expect(r.errors).toEqual([]);
          const ms = precision === "s" ? Math.floor(date.getTime() / 1000) * 1000 : date.getTime();
          expect([r.points[0]!.ms, r.points[0]!.ns]).toEqual([ms, BigInt(ms) * 1_000_000n]);
        },
      ),
      runs,
    );
  });
});
