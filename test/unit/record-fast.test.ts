import { expect, test } from "bun:test";
import fc from "fast-check";
import { fastRecord } from "../../src/core/record-fast.ts";
import { recordSchema } from "../../src/core/record.ts";

const name = fc.oneof(
  fc.constantFrom(
    "temp",
    "a.b/c:d-e",
    "_x",
    "__proto__",
    "constructor",
    "prototype",
    "",
    "bad name",
    "x".repeat(65),
    "ü",
  ),
  fc.string({ maxLength: 8 }),
);
const num = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(-90, 90, -180, 180, 90.0000001, -0, 1e150, -1.0000000000000002e150, 1e-150, -9.99e-151, 5e-324),
);
const value = fc.oneof(num, fc.string({ maxLength: 4 }), fc.boolean(), fc.constant(null));
const record = fc.record(
  {
    device_id: fc.oneof(
      { arbitrary: fc.constantFrom("truck-1", "a:b_c"), weight: 4 },
      fc.constantFrom("", "has.dot", "x".repeat(129)),
      fc.string({ maxLength: 10 }),
      num,
    ),
    ts: fc.oneof(fc.constantFrom("2026-01-01T00:00:00Z", "nope"), fc.integer(), fc.boolean()),
    location: fc.oneof(
      {
        arbitrary: fc.record({
          lat: fc.double({ min: -90, max: 90, noNaN: true }),
          lon: fc.double({ min: -180, max: 180, noNaN: true }),
        }),
        weight: 4,
      },
      fc.record({ lat: num, lon: num }),
      fc.record({ lat: num, lon: num, alt: num }),
      fc.record({ lat: num }),
      fc.constant(null),
      fc.array(num),
    ),
    metrics: fc.oneof(
      {
        arbitrary: fc.dictionary(
          fc.constantFrom("temp", "rssi", "a.b/c:d-e"),
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          { maxKeys: 3 },
        ),
        weight: 4,
      },
      fc.dictionary(name, num, { maxKeys: 5 }),
      fc.dictionary(name, value, { maxKeys: 3 }),
      fc.constant([]),
      fc.constant(null),
    ),
    attributes: fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 6 },
      { arbitrary: fc.dictionary(name, value, { maxKeys: 2 }), weight: 1 },
    ),
    extra: fc.oneof({ arbitrary: fc.constant(undefined), weight: 6 }, { arbitrary: value, weight: 1 }),
  },
  { requiredKeys: ["ts"] },
);

test("fastRecord accepts only what recordSchema accepts, and returns the same data", () => {
  let fast = 0;
  fc.assert(
    fc.property(record, (input) => {
      const viaJson = JSON.parse(JSON.stringify(input)); // what ingest sees
      const f = fastRecord(viaJson);
      const z = recordSchema.safeParse(viaJson);
      if (f === undefined) return;
      fast++;
      expect(z.success).toBe(true);
      expect(f).toEqual(z.data as typeof f);
      expect(Object.keys(f.metrics ?? {})).toEqual(Object.keys((z.data as typeof f).metrics ?? {}));
    }),
    { numRuns: 20_000 },
  );
  expect(fast).toBeGreaterThan(50); // the generator does reach the fast path
});

test("fastRecord takes the common shapes", () => {
  expect(fastRecord({ device_id: "d", ts: 1, location: { lat: 1, lon: 2 }, metrics: { t: 1 } })).toEqual({
    device_id: "d",
    ts: 1,
    location: { lat: 1, lon: 2 },
    metrics: { t: 1 },
  });
  expect(fastRecord({ device_id: "d", ts: "2026-01-01T00:00:00Z", metrics: {} })).toEqual({
    device_id: "d",
    ts: "2026-01-01T00:00:00Z",
    metrics: {},
  });
  expect(fastRecord({ device_id: "d", ts: 1, attributes: { a: 1 } })).toBeUndefined();
});
