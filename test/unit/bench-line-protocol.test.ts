/**
 * The bench's line-protocol encoder (bench/line-protocol.ts) gives the same readings as its NDJSON
 * (bench/data.ts), read back by the server's own parser and mapping: same device, time, location
 * and values, the metrics named {measurement}_{field}. And names that need escaping survive.
 */
import { describe, expect, test } from "bun:test";
import { encodeLine, lpBody, MEASUREMENT, recordLp } from "../../bench/line-protocol.ts";
import { PER_REQUEST, recordLine, requestBody } from "../../bench/data.ts";
import { parseLineProtocol } from "../../src/core/line-protocol.ts";
import { mapPoints } from "../../src/core/line-protocol-map.ts";

const NOW = Date.UTC(2026, 11, 1);

function mapped(text: string) {
  const parsed = parseLineProtocol(text, { precision: "ms", receivedAtMs: NOW });
  expect(parsed.errors).toEqual([]);
  const r = mapPoints(parsed.points);
  expect(r.errors).toEqual([]);
  return r.records.map((x) => x.record);
}

type Json = { device_id: string; ts: number; location?: { lat: number; lon: number }; metrics: Record<string, number> };

const asLp = (j: Json) => ({
  device_id: j.device_id,
  ts: j.ts,
  ...(j.location ? { location: j.location } : {}),
  metrics: Object.fromEntries(Object.entries(j.metrics).map(([k, v]) => [`${MEASUREMENT}_${k}`, v])),
});

describe("bench line protocol", () => {
  test("a request body is the NDJSON body's readings, line for line", () => {
    for (const n of [0, 1, 399]) {
      const json = requestBody("peers", n)
        .split("\n")
        .map((l) => JSON.parse(l) as Json);
      const records = mapped(lpBody("peers", n));
      expect(records).toHaveLength(PER_REQUEST);
      expect(records).toEqual(json.map(asLp));
      expect(json.some((j) => j.location)).toBe(true); // every third has one
    }
  });

  test("single records: one line each, the same reading as the JSON record", () => {
    for (const i of [0, 1, 2, 4_999, 5_000, 123_456]) {
      const lp = recordLp("peers-single", i, 5_000, 1);
      expect(lp.includes("\n")).toBe(false);
      expect(mapped(lp)).toEqual([asLp(JSON.parse(recordLine("peers-single", i, 5_000, 1)) as Json)]);
    }
  });

  test("escapes what line protocol needs escaped; refuses what it cannot carry", () => {
    const line = encodeLine("my m,x", { "dev ice": "a,b=c d\\,e" }, { "f=1": 1.5, g: 20 }, NOW);
    const parsed = parseLineProtocol(line, { precision: "ms", receivedAtMs: 0 });
    expect(parsed.errors).toEqual([]);
    const p = parsed.points[0]!;
    expect(p.measurement).toBe("my m,x");
    expect(p.tags).toEqual([["dev ice", "a,b=c d\\,e"]]);
    expect(p.fields).toEqual([
      ["f=1", { type: "float", value: 1.5 }],
      ["g", { type: "float", value: 20 }],
    ]);
    expect(() => encodeLine("m", {}, { v: Number.NaN }, NOW)).toThrow(/no float/);
    expect(() => encodeLine("m", {}, {}, NOW)).toThrow(/at least one field/);
    expect(() => encodeLine("m", { t: "ends\\" }, { v: 1 }, NOW)).toThrow(/cannot carry/);
    expect(() => encodeLine("m", { t: "a\tb" }, { v: 1 }, NOW)).toThrow(/cannot carry/);
  });
});
