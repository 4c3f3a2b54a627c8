/**
 * T6: property-based tests (fast-check) of parsing, normalization, event ids, subjects and the
 * broker message format: no input crashes them, and no id or subject token can carry '.', '*',
 * '>', '$' or whitespace, whatever the device id.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeEnvelope, encodeEnvelope } from "../../src/core/envelope.ts";
import { canonicalName, eventId } from "../../src/core/event-id.ts";
import { planMessages } from "../../src/core/plan.ts";
import { normalizeRecord, roundCoordinate } from "../../src/core/record.ts";
import { metricInRange } from "../../src/core/record-limits.ts";
import { parseRfc3339 } from "../../src/core/timestamp.ts";
import { assetHash, telemetrySubject } from "../../src/core/subject.ts";
import { parseBody } from "../../src/ingest/parse.ts";
import { HttpError } from "../../src/http/errors.ts";

const NOW = Date.UTC(2026, 10, 22);
const opts = { tenant: "acme", nowMs: NOW, maxFutureMs: 3_600_000 };
const UNSAFE = /[.*>$\s]/;
const runs = { numRuns: 2_000 };

/** Anything JSON.parse can produce, biased toward record-like objects. */
const recordish = fc.record(
  {
    device_id: fc.oneof(
      fc.string(),
      fc.string({ unit: "grapheme" }),
      fc.constantFrom("a.b", "*", ">", "a b", "$x", "ok-1"),
      fc.integer(),
    ),
    ts: fc.oneof(
      fc.integer(),
      fc.double(),
      fc.string(),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    ),
    location: fc.oneof(fc.record({ lat: fc.double(), lon: fc.double() }), fc.anything()),
    metrics: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.double(), fc.anything())), fc.anything()),
    attributes: fc.anything(),
  },
  { requiredKeys: [] },
);

describe("properties", () => {
  test("normalizeRecord never throws, and accepted records have safe, canonical fields", () => {
    fc.assert(
      fc.property(fc.oneof(recordish, fc.anything()), (input) => {
        const r = normalizeRecord(input, opts);
        if (!r.ok) {
          expect(r.errors.length).toBeGreaterThan(0);
          return;
        }
        const { reading } = r;
        expect(UNSAFE.test(reading.deviceId)).toBe(false);
        expect(reading.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        for (const token of telemetrySubject(reading.tenant, reading.deviceId).split(".")) {
          expect(token.length).toBeGreaterThan(0);
          expect(UNSAFE.test(token)).toBe(false);
        }
        if (reading.lat !== null) expect(roundCoordinate(reading.lat)).toBe(reading.lat);
        expect(Number.isInteger(reading.ts)).toBe(true);
        for (const v of Object.values(reading.metrics ?? {})) expect(metricInRange(v)).toBe(true);
      }),
      runs,
    );
  });

  test("the asset token is 16 hex digits for every device id, including hostile ones", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (device) => {
        expect(assetHash(device)).toMatch(/^[0-9a-f]{16}$/);
        expect(telemetrySubject("acme", device).split(".")).toHaveLength(4);
      }),
      runs,
    );
  });

  test("event ids are a pure function of the identifying fields", () => {
    const identity = fc.record({
      tenant: fc.constantFrom("acme", "beta"),
      deviceId: fc.stringMatching(/^[A-Za-z0-9_:-]{1,20}$/),
      ts: fc.integer({ min: Date.UTC(2000, 0, 1), max: NOW }),
      lat: fc.option(fc.double({ min: -90, max: 90, noNaN: true }).map(roundCoordinate), { nil: null }),
      lon: fc.option(fc.double({ min: -180, max: 180, noNaN: true }).map(roundCoordinate), { nil: null }),
    });
    fc.assert(
      fc.property(identity, (id) => {
        const withBoth = id.lat === null || id.lon === null ? { ...id, lat: null, lon: null } : id;
        expect(eventId(withBoth)).toBe(eventId({ ...withBoth }));
        expect(UNSAFE.test(canonicalName(withBoth).replaceAll(".", ""))).toBe(false); // ISO and decimals have '.', nothing else unsafe
      }),
      runs,
    );
  });

  test("rounding is idempotent and stays within half a unit of the 7th decimal", () => {
    fc.assert(
      fc.property(fc.double({ min: -180, max: 180, noNaN: true }), (x) => {
        const r = roundCoordinate(x);
        expect(roundCoordinate(r)).toBe(r);
        expect(Math.abs(r - x)).toBeLessThanOrEqual(0.5e-7 + 1e-12);
      }),
      runs,
    );
  });

  test("RFC 3339 parsing never throws and agrees with Date on what it accepts", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .date({ noInvalidDate: true, min: new Date(0), max: new Date(Date.UTC(9999, 0)) })
            .map((d) => d.toISOString()),
        ),
        (text) => {
          const r = parseRfc3339(text);
          if (r.ok) expect(r.ms).toBe(Math.trunc(Date.parse(text.replace(/(\.\d{3})\d+/, "$1"))));
        },
      ),
      runs,
    );
  });

  test("request bodies: parseBody answers an HttpError or items, never anything else", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.array(fc.json()).map((a) => a.join("\n")),
        ),
        fc.constantFrom("json" as const, "ndjson" as const),
        (text, kind) => {
          try {
            const items = parseBody(text, kind, 10_000);
            expect(Array.isArray(items)).toBe(true);
          } catch (err) {
            expect(err).toBeInstanceOf(HttpError);
          }
        },
      ),
      runs,
    );
  });

  test("planned messages round-trip through the broker format, every valid reading exactly once", () => {
    const rec = fc.record({
      device_id: fc.constantFrom("a", "b", "c"),
      ts: fc.integer({ min: NOW - 86_400_000, max: NOW }),
      metrics: fc.record({ v: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
    });
    fc.assert(
      fc.property(
        fc.array(rec, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 10 }),
        (records, maxRecords) => {
          const valid = records.flatMap((x, index) => {
            const r = normalizeRecord(x, opts);
            return r.ok ? [{ index, reading: r.reading }] : [];
          });
          const plan = planMessages(valid, { maxRecords, maxBytes: 1 << 20, receivedAt: NOW });
          const carried = plan.messages.flatMap((m) => decodeEnvelope(m.body).readings.map((r) => r.eventId));
          expect(new Set(carried).size).toBe(carried.length);
          expect(new Set(carried)).toEqual(new Set(valid.map((v) => v.reading.eventId)));
          for (const m of plan.messages) expect(decodeEnvelope(m.body).readings.length).toBeLessThanOrEqual(maxRecords);
          // (every record can be out of range: metric values beyond 1e150, decision 0470)
          if (valid.length > 0)
            expect(decodeEnvelope(encodeEnvelope(valid.map((v) => v.reading).slice(0, 1), NOW)).readings).toHaveLength(
              1,
            );
        },
      ),
      { numRuns: 500 },
    );
  });
});
