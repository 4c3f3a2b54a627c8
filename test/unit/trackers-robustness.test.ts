/** The tracker decoders never throw: any input is a result, and every record they make has the record's shape. */
import { expect, test } from "bun:test";
import fc from "fast-check";
import { recordSchema } from "../../src/core/record.ts";
import type { DecodeResult } from "../../src/core/trackers/fields.ts";
import { decodeOsmAnd, osmandParameters } from "../../src/core/trackers/osmand.ts";
import { decodeOwnTracks, decodeOwnTracksText } from "../../src/core/trackers/owntracks.ts";
import { decodeTraccarJson } from "../../src/core/trackers/traccar-json.ts";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

/** ok with records whose top-level shape the record schema knows, or errors with a path and a message. */
function wellFormed(r: DecodeResult): void {
  if (!r.ok) {
    expect(r.errors.length).toBeGreaterThan(0);
    for (const e of r.errors) expect([typeof e.path, typeof e.message]).toEqual(["string", "string"]);
    return;
  }
  for (const rec of r.records) {
    expect(typeof rec.device_id).toBe("string");
    expect(Number.isSafeInteger(rec.ts)).toBe(true);
    for (const key of Object.keys(rec)) expect(Object.keys(recordSchema.shape)).toContain(key);
  }
}

const names = fc.constantFrom(
  "id",
  "deviceid",
  "lat",
  "lon",
  "location",
  "timestamp",
  "speed",
  "batt",
  "valid",
  "x",
  "__proto__",
  "constructor",
);

test("decodeOsmAnd: any parameters", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.oneof(names, fc.string()), fc.string()), { maxLength: 20 }), (pairs) => {
      const q = new URLSearchParams(pairs).toString();
      wellFormed(decodeOsmAnd(osmandParameters(q), NOW));
    }),
  );
});

test("decodeTraccarJson and decodeOwnTracks: any JSON value, and any value in a valid message", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      wellFormed(decodeTraccarJson(v));
      wellFormed(decodeOwnTracks(v, { user: "u" }));
    }),
  );
  fc.assert(
    fc.property(fc.string(), fc.jsonValue(), (key, value) => {
      const ot = { _type: "location", lat: 1, lon: 2, tst: 1763805600, [key]: value };
      wellFormed(decodeOwnTracks(ot, { user: "u" }));
      const tc = {
        device_id: "d",
        location: {
          timestamp: "2026-11-22T10:00:00Z",
          coords: { latitude: 1, longitude: 2 },
          [key]: value,
          extras: { [key]: value },
        },
      };
      wellFormed(decodeTraccarJson(tc));
    }),
  );
});

test("decodeOwnTracksText: any text", () => {
  fc.assert(fc.property(fc.string(), (t) => wellFormed(decodeOwnTracksText(t, { device: "d" }))));
});
