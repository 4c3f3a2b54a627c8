import { describe, expect, test } from "bun:test";
import { normalizeRecord, roundCoordinate, type NormalizeResult } from "../../src/core/record.ts";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const opts = { tenant: "acme", nowMs: NOW, maxFutureMs: 3_600_000 };
const norm = (input: unknown) => normalizeRecord(input, opts);
const errorsOf = (r: NormalizeResult) => (r.ok ? [] : r.errors);
const base = { device_id: "truck-1", ts: "2026-11-22T10:00:00Z", metrics: { temp: 21.5 } };

describe("normalizeRecord", () => {
  test("normalizes timestamps with offsets to UTC epoch ms, truncating below a millisecond", () => {
    const r = norm({ ...base, ts: "2026-11-22T11:00:00.1239+01:00" });
    expect(r.ok && r.reading.ts).toBe(Date.UTC(2026, 10, 22, 10, 0, 0, 123));
  });

  test("accepts epoch milliseconds", () => {
    const r = norm({ ...base, ts: Date.UTC(2026, 10, 22, 10) });
    expect(r.ok && r.reading.ts).toBe(Date.UTC(2026, 10, 22, 10));
  });

  test("rounds coordinates to 7 decimals", () => {
    const r = norm({ device_id: "gps-1", ts: base.ts, location: { lat: 52.520006612345, lon: -13.40495404999 } });
    expect(r.ok && [r.reading.lat, r.reading.lon]).toEqual([52.5200066, -13.404954]);
    expect(roundCoordinate(-0.00000001)).toBe(0);
    expect(Object.is(roundCoordinate(-0.00000001), -0)).toBe(false);
  });

  test("accepts metric values of magnitude 1e-150 to 1e150, and 0", () => {
    const metrics = { a: 1e150, b: -1e150, c: 1e-150, d: -1e-150, e: 0, f: -0 };
    const r = norm({ ...base, metrics });
    expect(r.ok && r.reading.metrics).toEqual(metrics);
  });

  test("keeps attributes out of the event id", () => {
    const a = norm({ ...base, attributes: { fw: "1.0" } });
    const b = norm({ ...base, attributes: { fw: "2.0" }, metrics: { temp: 99 } });
    expect(a.ok && b.ok && a.reading.eventId === b.reading.eventId).toBe(true);
  });

  test.each([
    [{ ...base, device_id: "a.b" }, "device_id", "'.'"],
    [{ ...base, device_id: "a*" }, "device_id", "'*'"],
    [{ ...base, device_id: "a>" }, "device_id", "'>'"],
    [{ ...base, device_id: "a b" }, "device_id", "whitespace"],
    [{ ...base, device_id: "caf\u00e9" }, "device_id", "ASCII"],
    [{ ...base, device_id: "a\u0001" }, "device_id", "control"],
    [{ ...base, device_id: "" }, "device_id", "empty"],
    [{ ...base, device_id: 7 }, "device_id", "string"],
    [{ ts: base.ts, metrics: base.metrics }, "device_id", "required"],
    [{ device_id: "d", metrics: base.metrics }, "ts", "required"],
    [{ ...base, ts: "2026-11-22T10:00:00" }, "ts", "offset"],
    [{ ...base, ts: "yesterday" }, "ts", "RFC 3339"],
    [{ ...base, ts: "2026-02-30T10:00:00Z" }, "ts", "does not exist"],
    [{ ...base, ts: "1999-12-31T23:59:59Z" }, "ts", "before 2000"],
    [{ ...base, ts: 1763805600 }, "ts", "epoch seconds"],
    [{ ...base, ts: NOW + 2 * 3_600_000 }, "ts", "future"],
    [{ ...base, ts: 1.5e12 + 0.5 }, "ts", "integer"],
    [{ ...base, location: { lat: 91, lon: 0 } }, "location.lat", "between -90 and 90"],
    [{ ...base, location: { lat: 0, lon: -180.5 } }, "location.lon", "between -180 and 180"],
    [{ ...base, location: { lat: 0 } }, "location.lon", "required"],
    [{ ...base, location: { lat: "1", lon: 0 } }, "location.lat", "finite number"],
    [{ ...base, metrics: { temp: Infinity } }, "metrics.temp", "finite"],
    [{ ...base, metrics: { temp: "NaN" } }, "metrics.temp", "finite"],
    [{ ...base, metrics: { "bad name": 1 } }, "metrics.bad name", "metric names"],
    [{ ...base, metrics: { big: 1.0000000000000002e150 } }, "metrics.big", "between 1e-150 and 1e150"],
    [{ ...base, metrics: { big: -Number.MAX_VALUE } }, "metrics.big", "between 1e-150 and 1e150"],
    [{ ...base, metrics: { tiny: 9.99e-151 } }, "metrics.tiny", "between 1e-150 and 1e150"],
    [{ ...base, metrics: { tiny: -5e-324 } }, "metrics.tiny", "between 1e-150 and 1e150"],
    [{ device_id: "d", ts: base.ts }, "", "location or at least one metric"],
    [{ device_id: "d", ts: base.ts, metrics: {} }, "", "location or at least one metric"],
    [{ ...base, extra: 1 }, "extra", "unknown field"],
    [{ ...base, attributes: { note: "a\u0000b" } }, "attributes.note", ""],
    [{ ...base, attributes: { note: "x".repeat(300) } }, "attributes.note", ""],
    [[1, 2], "", "object"],
    [null, "", "object"],
  ])("rejects %j at %s", (input, path, fragment) => {
    const errors = errorsOf(norm(input));
    expect(errors.length).toBeGreaterThan(0);
    const hit = errors.find((e) => e.path === path);
    expect(hit).toBeDefined();
    expect(hit!.message).toContain(fragment);
  });

  // JSON.parse makes these own keys; zod's record used to skip __proto__ (the record was accepted
  // without it) and kept constructor/prototype. Each is now refused by name, at its path.
  test.each(["metrics", "attributes"])(
    "refuses reserved %s names at their path, with the rest of the record's errors",
    (field) => {
      for (const name of ["__proto__", "constructor", "prototype"]) {
        const input = JSON.parse(
          `{"device_id":"d","ts":"${base.ts}","metrics":{"temp":1},"${field}":{"ok":1,"${name}":2}}`,
        );
        const r = norm(input);
        expect(r.ok).toBe(false);
        expect(errorsOf(r)).toEqual([
          {
            path: `${field}.${name}`,
            message: `'${name}' is a reserved name: ${field === "metrics" ? "metric" : "attribute"} names must not be __proto__, constructor or prototype`,
          },
        ]);
      }
      const both = norm(JSON.parse(`{"device_id":"a.b","ts":"${base.ts}","${field}":{"__proto__":1,"constructor":2}}`));
      expect(errorsOf(both).map((e) => e.path)).toEqual(
        expect.arrayContaining(["device_id", `${field}.__proto__`, `${field}.constructor`]),
      );
    },
  );

  test("names that only contain a reserved word are fine", () => {
    const r = norm({ ...base, metrics: { constructor_count: 1, proto: 2 }, attributes: { prototype_id: "x" } });
    expect(r.ok && [r.reading.metrics, r.reading.attributes]).toEqual([
      { constructor_count: 1, proto: 2 },
      { prototype_id: "x" },
    ]);
  });
});
