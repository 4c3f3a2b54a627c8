/**
 * The line-protocol parser against the examples of the specification (InfluxDB "Line protocol"
 * reference) and a corpus of bad input: each bad line gets its own specific error, the good
 * lines of the same body are kept.
 */
import { describe, expect, test } from "bun:test";
import { type LinePoint, MAX_STRING_FIELD_BYTES, parseLineProtocol } from "../../src/core/line-protocol.ts";
import { convertTimestamp, nsToMs, parsePrecision, type Precision } from "../../src/core/line-protocol-time.ts";

const RX = Date.UTC(2026, 10, 22, 10, 0, 0, 123);

function parse(text: string, precision: Precision = "ns") {
  return parseLineProtocol(text, { precision, receivedAtMs: RX });
}

function one(text: string, precision: Precision = "ns"): LinePoint {
  const r = parse(text, precision);
  expect(r.errors).toEqual([]);
  expect(r.points).toHaveLength(1);
  return r.points[0]!;
}

function error(text: string, precision: Precision = "ns"): string {
  const r = parse(text, precision);
  expect(r.points).toEqual([]);
  expect(r.errors).toHaveLength(1);
  return r.errors[0]!.message;
}

describe("the specification's examples", () => {
  test("measurement, tags, a string field and a nanosecond timestamp", () => {
    const p = one('myMeasurement,tag1=value1,tag2=value2 fieldKey="fieldValue" 1556813561098000000');
    expect(p.measurement).toBe("myMeasurement");
    expect(p.tags).toEqual([
      ["tag1", "value1"],
      ["tag2", "value2"],
    ]);
    expect(p.fields).toEqual([["fieldKey", { type: "string", value: "fieldValue" }]]);
    expect(p.ns).toBe(1556813561098000000n);
    expect(p.ms).toBe(1556813561098);
    expect(p.timestamped).toBe(true);
  });

  test("field types: float, integer, unsigned, string, boolean", () => {
    const values: [string, unknown][] = [
      ["1.0", { type: "float", value: 1 }],
      ["1", { type: "float", value: 1 }],
      ["-1.234456e+78", { type: "float", value: -1.234456e78 }],
      ["1.e+78", { type: "float", value: 1e78 }],
      [".5", { type: "float", value: 0.5 }],
      ["1i", { type: "integer", value: 1n }],
      ["-9223372036854775808i", { type: "integer", value: -9223372036854775808n }],
      ["9223372036854775807i", { type: "integer", value: 9223372036854775807n }],
      ["12485903u", { type: "unsigned", value: 12485903n }],
      ["18446744073709551615u", { type: "unsigned", value: 18446744073709551615n }],
      ['"this is a string"', { type: "string", value: "this is a string" }],
    ];
    for (const b of ["t", "T", "true", "True", "TRUE"]) values.push([b, { type: "boolean", value: true }]);
    for (const b of ["f", "F", "false", "False", "FALSE"]) values.push([b, { type: "boolean", value: false }]);
    for (const [text, value] of values)
      expect(one(`myMeasurement fieldKey=${text}`).fields).toEqual([["fieldKey", value]] as never);
  });

  test("no timestamp: the receive time, exactly", () => {
    const p = one('myMeasurement fieldKey="string value"');
    expect(p.timestamped).toBe(false);
    expect(p.ms).toBe(RX);
    expect(p.ns).toBe(BigInt(RX) * 1_000_000n);
  });

  test("escaped spaces, commas, equals signs and double quotes", () => {
    expect(one('my\\ Measurement fieldKey="string value"').measurement).toBe("my Measurement");
    expect(one('myMeasurement fieldKey="\\"string\\" within a string"').fields[0]![1]).toEqual({
      type: "string",
      value: '"string" within a string',
    });
    expect(one("myMeasurement,tag\\ Key1=tag\\ Value1,tag\\ Key2=tag\\ Value2 fieldKey=100").tags).toEqual([
      ["tag Key1", "tag Value1"],
      ["tag Key2", "tag Value2"],
    ]);
    const p = one(
      '"measurement\\ with\\ quo⚡️es\\ and\\ emoji",tag\\ key\\ with\\ sp🚀ces=tag\\,value\\,with"commas" field_k\\ey="string field value, only \\" need be esc🔥ped"',
    );
    expect(p.measurement).toBe('"measurement with quo⚡️es and emoji"');
    expect(p.tags).toEqual([["tag key with sp🚀ces", 'tag,value,with"commas"']]);
    expect(p.fields).toEqual([
      ["field_k\\ey", { type: "string", value: 'string field value, only " need be esc🔥ped' }],
    ]);
    expect(one("m,k\\=ey=v\\=al f\\,ie\\=ld\\ 1=1").tags).toEqual([["k=ey", "v=al"]]);
    expect(one("m,k=v f\\,ie\\=ld\\ 1=1").fields[0]![0]).toBe("f,ie=ld 1");
    expect(one("m\\=x,k=v f=1").measurement).toBe("m\\=x"); // '=' is not escapable in a measurement
    expect(one("m=x f=1").measurement).toBe("m=x");
    expect(one("cpu,a=b=c f=1").tags).toEqual([["a", "b=c"]]); // an unescaped '=' in a tag value, as InfluxDB 3 reads it
  });

  test("the reference's backslash examples (airSensor)", () => {
    const a = one('airSensor,sensor_id=TLM\\=0201 desc="\\=My data==\\\\"');
    expect([a.measurement, a.tags, a.fields]).toEqual([
      "airSensor",
      [["sensor_id", "TLM=0201"]],
      [["desc", { type: "string", value: "\\=My data==\\" }]],
    ]);
    // The v2.1 page keeps all five backslashes of the measurement; its later table and InfluxDB 3's
    // parser read each pair as one, which is what this parser does: three.
    const b = one('air\\\\\\\\\\Sensor,sensor_id=TLM\\=0201 desc="\\\\\\"==My data\\==\\\\"');
    expect(b.measurement).toBe("air\\\\\\Sensor");
    expect(b.fields).toEqual([["desc", { type: "string", value: '\\"==My data\\==\\' }]]);
  });

  test("emojis in tags and strings", () => {
    const p = one('myMeasurement,tagKey=🍭 fieldKey="Launch 🚀" 1556813561098000000');
    expect(p.tags).toEqual([["tagKey", "🍭"]]);
    expect(p.fields[0]![1]).toEqual({ type: "string", value: "Launch 🚀" });
  });

  test("backslashes: two make one, a lone one is literal (the specification's table)", () => {
    const table: [string, string][] = [
      ["\\", "\\"],
      ["\\\\", "\\"],
      ["\\\\\\", "\\\\"],
      ["\\\\\\\\", "\\\\"],
      ["\\\\\\\\\\", "\\\\\\"],
      ["\\\\\\\\\\\\", "\\\\\\"],
    ];
    for (const [written, meant] of table) {
      expect(one(`m,t=a${written}b f=1`).tags[0]![1]).toBe(`a${meant}b`);
      expect(one(`m${written}x f=1`).measurement).toBe(`m${meant}x`);
      expect(one(`m f="a${written}b"`).fields[0]![1]).toEqual({ type: "string", value: `a${meant}b` });
    }
    expect(one('m f="\\\\"').fields[0]![1]).toEqual({ type: "string", value: "\\" });
    expect(one('m f="a\\nb"').fields[0]![1]).toEqual({ type: "string", value: "a\\nb" });
  });

  test("comments, blank lines, leading whitespace, CRLF, line numbers", () => {
    const body =
      "# This is a comment\r\n\r\n   \nm,host=a f=1 1556813561098000000\r\n  # indented comment\n\tm f=2i\r\nbad\n";
    const r = parse(body);
    expect(r.points.map((p) => [p.line, p.fields[0]![1]])).toEqual([
      [4, { type: "float", value: 1 }],
      [6, { type: "integer", value: 2n }],
    ]);
    expect(r.errors).toEqual([{ line: 7, message: "unable to parse 'bad': missing fields" }]);
    expect(parse("").points).toEqual([]);
    expect(parse("\n\n").errors).toEqual([]);
  });

  test("a newline inside a string field belongs to the string; the lines after are counted", () => {
    const r = parse('m f="two\nlines",g=1 1\nm f=2 2');
    expect(r.errors).toEqual([]);
    expect(r.points[0]!.fields[0]![1]).toEqual({ type: "string", value: "two\nlines" });
    expect(r.points[1]!.line).toBe(3);
  });

  test("runs of spaces between the sections, trailing spaces", () => {
    const p = one("m,t=v   f=1,g=2   1556813561098000000  ");
    expect(p.fields).toHaveLength(2);
    expect(p.ns).toBe(1556813561098000000n);
    expect(one("m f=1 ").timestamped).toBe(false);
  });
});

describe("precisions", () => {
  test("every precision converts exactly to nanoseconds, and floors to milliseconds", () => {
    const cases: [Precision, string, bigint][] = [
      ["ns", "1556813561098765432", 1556813561098765432n],
      ["us", "1556813561098765", 1556813561098765000n],
      ["ms", "1556813561098", 1556813561098000000n],
      ["s", "1556813561", 1556813561000000000n],
      ["m", "25946892", 25946892n * 60_000_000_000n],
      ["h", "432448", 432448n * 3_600_000_000_000n],
    ];
    for (const [precision, text, ns] of cases) {
      const p = one(`m f=1 ${text}`, precision);
      expect(p.ns).toBe(ns);
      expect(p.ms).toBe(Number(ns / 1_000_000n));
    }
    expect(one("m f=1 1556813561098999999").ms).toBe(1556813561098); // dropped, not rounded up
    expect(one("m f=1 -1").ms).toBe(-1); // floored toward negative infinity
    expect(nsToMs(-1_000_000n)).toBe(-1);
    expect(nsToMs(-1_000_001n)).toBe(-2);
  });

  test("auto guesses the unit from the magnitude, as InfluxDB 3 does", () => {
    expect(one("m f=1 1556813561", "auto").ns).toBe(1556813561000000000n);
    expect(one("m f=1 1556813561098", "auto").ns).toBe(1556813561098000000n);
    expect(one("m f=1 1556813561098765", "auto").ns).toBe(1556813561098765000n);
    expect(one("m f=1 1556813561098765432", "auto").ns).toBe(1556813561098765432n);
  });

  test("the precision parameter of each API", () => {
    expect(parsePrecision(undefined, "v2")).toEqual({ ok: true, precision: "ns" });
    expect(parsePrecision("", "v1")).toEqual({ ok: true, precision: "ns" });
    expect(parsePrecision(null, "v3")).toEqual({ ok: true, precision: "auto" });
    expect(parsePrecision("u", "v1")).toEqual({ ok: true, precision: "us" });
    expect(parsePrecision("n", "v1")).toEqual({ ok: true, precision: "ns" });
    expect(parsePrecision("h", "v1")).toEqual({ ok: true, precision: "h" });
    expect(parsePrecision("us", "v2")).toEqual({ ok: true, precision: "us" });
    expect(parsePrecision("millisecond", "v3")).toEqual({ ok: true, precision: "ms" });
    expect(parsePrecision("u", "v2")).toEqual({
      ok: false,
      message: "unknown precision 'u': use one of ns, us, ms, s",
    });
    expect(parsePrecision("h", "v2").ok).toBe(false);
    expect(parsePrecision("auto", "v2").ok).toBe(false);
    expect(parsePrecision("constructor", "v1").ok).toBe(false);
    expect(parsePrecision("x".repeat(1000), "v1")).toEqual({
      ok: false,
      message: `unknown precision '${"x".repeat(32)}': use one of n, ns, u, us, ms, s, m, h`,
    });
  });

  test("timestamps at the edges of int64 nanoseconds", () => {
    expect(convertTimestamp("9223372036854775807", "ns")).toMatchObject({ ok: true, ns: 9223372036854775807n });
    expect(convertTimestamp("-9223372036854775808", "ns")).toMatchObject({ ok: true, ns: -9223372036854775808n });
    expect(convertTimestamp("9223372036", "s")).toMatchObject({ ok: true, ns: 9223372036000000000n });
    expect(convertTimestamp("9223372037", "s").ok).toBe(false);
    expect(convertTimestamp("153722868", "m").ok).toBe(false);
  });
});

describe("bad input: a specific error per line", () => {
  const corpus: [string, string][] = [
    ["cpu", "missing fields"],
    ["cpu,host=a", "missing fields"],
    ["cpu,host=a ", "missing fields"],
    ["cpu,", "missing tag key"],
    ["cpu,=a f=1", "missing tag key"],
    ["cpu,host f=1", "missing tag value for tag 'host'"],
    ["cpu,host= f=1", "missing tag value for tag 'host'"],
    ["cpu,a=1,a=2 f=1", "duplicate tag 'a'"],
    [",host=a f=1", "missing measurement"],
    ["cpu,host=a\\ f=1", "missing fields"], // the backslash escapes the space: one tag value 'a f=1'
    ["cpu,host=a\\\\ f=1", "the value of tag 'host' ends with a backslash"],
    ["cpu,host=a\\", "the value of tag 'host' ends with a backslash"],
    ["cpu\\\\ f=1", "the measurement ends with a backslash"],
    ["cpu,k\\\\=v f=1", "a tag key ends with a backslash"],
    ["cpu f\\\\=1", "a field key ends with a backslash"],
    ["cpu\tx f=1", "a tab in the measurement: tabs are not allowed in names"],
    ["cpu,k=v\tx f=1", "a tab in the value of tag 'k': tabs are not allowed in names"],
    ["cpu\tf=1", "a tab in the measurement: tabs are not allowed in names"],
    ["cpu,host=a\\ f", "missing fields"],
    ["cpu f", "missing field value for field 'f'"],
    ["cpu f=", "missing field value for field 'f'"],
    ["cpu f=,g=1", "missing field value for field 'f'"],
    ["cpu =1", "missing field key"],
    ["cpu f=1,", "missing field key"],
    ["cpu f=1,g=2,f=3", "duplicate field 'f'"],
    // past 16 keys in a line, duplicates are found by a Set instead of a scan: both ways
    [`cpu ${Array.from({ length: 20 }, (_, k) => `f${k}=1`).join(",")},f3=2`, "duplicate field 'f3'"],
    [`cpu ${Array.from({ length: 20 }, (_, k) => `f${k}=1`).join(",")},f19=2`, "duplicate field 'f19'"],
    [`cpu,${Array.from({ length: 20 }, (_, k) => `t${k}=v`).join(",")},t17=w f=1`, "duplicate tag 't17'"],
    ['cpu f="abc', "unterminated string in field 'f'"],
    ['cpu f="abc\\"', "unterminated string in field 'f'"],
    ['cpu f="x"y', "unexpected text after string field 'f'"],
    ["cpu f=abc", "invalid field value 'abc' in field 'f': strings must be double-quoted"],
    ["cpu f=1.2.3", "invalid field value '1.2.3' in field 'f'"],
    ["cpu f=NaN", "invalid field value 'NaN' in field 'f'"],
    ["cpu f=inf", "invalid field value 'inf' in field 'f'"],
    ["cpu f=+1", "invalid field value '+1' in field 'f'"],
    ["cpu f=1i2", "invalid field value '1i2' in field 'f'"],
    ["cpu f=1.5i", "invalid field value '1.5i' in field 'f'"],
    ["cpu f=1e400", "float field 'f' out of range"],
    ["cpu f=9223372036854775808i", "integer field 'f' out of range (-9223372036854775808 to 9223372036854775807)"],
    ["cpu f=-9223372036854775809i", "integer field 'f' out of range (-9223372036854775808 to 9223372036854775807)"],
    ["cpu f=18446744073709551616u", "unsigned integer field 'f' out of range (0 to 18446744073709551615)"],
    [`cpu f=${"9".repeat(500)}i`, "integer field 'f' out of range"],
    ["cpu f=-1u", "invalid unsigned integer '-1u' in field 'f': must not be negative"],
    ["cpu f=1 abc", "invalid timestamp 'abc': not an integer"],
    ["cpu f=1 1.5", "invalid timestamp '1.5': not an integer"],
    ["cpu f=1 1 2", "unexpected text after the timestamp"],
    [
      "cpu f=1 9223372036854775808",
      "timestamp '9223372036854775808' out of range: in precision ns it must fit int64 nanoseconds (years 1677-2262)",
    ],
    [`cpu f=1 ${"1".repeat(100)}`, `invalid timestamp '${"1".repeat(48)}': not an integer`],
  ];
  for (const [line, reason] of corpus) {
    test(JSON.stringify(line), () => {
      expect(error(line)).toBe(`unable to parse '${line.length > 100 ? `${line.slice(0, 100)}...` : line}': ${reason}`);
    });
  }

  test("a timestamp in seconds beyond int64 nanoseconds", () => {
    expect(error("cpu f=1 9999999999", "s")).toContain("out of range: in precision s");
  });

  test("a string field is at most 64 KB (UTF-8 bytes)", () => {
    expect(one(`m f="${"x".repeat(MAX_STRING_FIELD_BYTES)}"`).fields[0]![1]).toMatchObject({ type: "string" });
    expect(error(`m f="${"x".repeat(MAX_STRING_FIELD_BYTES + 1)}"`)).toEndWith(
      `string field 'f' is longer than ${MAX_STRING_FIELD_BYTES} bytes`,
    );
    expect(error(`m f="${"é".repeat(MAX_STRING_FIELD_BYTES / 2 + 1)}"`)).toEndWith("bytes");
  });

  test("the quoted line is cut at 100 characters", () => {
    const msg = error(`cpu f=${"x".repeat(1000)}`);
    expect(msg.length).toBeLessThan(250);
    expect(msg).toStartWith(`unable to parse 'cpu f=${"x".repeat(94)}...': invalid field value`);
  });

  test("partial write: every good line is kept, every bad line reported with its number", () => {
    const body = ["m,host=a f=1 1", "m,host=a f=abc 2", "", "m,host=a f=3 3", "m,host=a", "m,host=a f=5 5"].join("\n");
    const r = parse(body);
    expect(r.points.map((p) => [p.line, p.ns])).toEqual([
      [1, 1n],
      [4, 3n],
      [6, 5n],
    ]);
    expect(r.errors.map((e) => e.line)).toEqual([2, 5]);
  });

  test("hostile input: a body of many bad lines keeps the first 100 errors and counts them all", () => {
    const r = parse("x\n".repeat(100_000));
    expect(r.errorCount).toBe(100_000);
    expect(r.errors).toHaveLength(100);
    expect(r.errors[99]!.line).toBe(100);
    const few = parseLineProtocol("a\nm f=1\nb\nc", { precision: "ns", receivedAtMs: RX, maxErrors: 2 });
    expect([few.errors.map((e) => e.line), few.errorCount, few.points.length]).toEqual([[1, 3], 3, 1]);
  });

  test("an unterminated string does not swallow the lines after it", () => {
    const r = parse('m f="open\nm g=1 1\nm h=2 2');
    // the string runs to the end of the body, as InfluxDB reads it: one bad line
    expect(r.points).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.line).toBe(1);
  });
});
