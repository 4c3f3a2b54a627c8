/**
 * The OsmAnd decoders (src/core/trackers): golden requests as Traccar's documentation and its
 * OsmAndProtocolDecoderTest send them, a bad-input corpus, and the records through normalizeRecord.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { normalizeRecord } from "../../src/core/record.ts";
import type { DecodeResult } from "../../src/core/trackers/fields.ts";
import {
  decodeOsmAnd,
  MAX_OSMAND_PARAMETERS,
  osmandParameters,
  parseOsmAndTimestamp,
} from "../../src/core/trackers/osmand.ts";
import { decodeTraccarJson } from "../../src/core/trackers/traccar-json.ts";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const opts = { tenant: "acme", nowMs: NOW, maxFutureMs: 3_600_000 };
const query = (q: string) => decodeOsmAnd(osmandParameters(q), NOW);
const record = (r: DecodeResult) => {
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  expect(r.records).toHaveLength(1);
  return r.records[0]!;
};
const errors = (r: DecodeResult) => (r.ok ? [] : r.errors);
const normalized = (r: DecodeResult) => normalizeRecord(record(r), opts);

describe("OsmAnd query and form parameters", () => {
  test("Traccar's example with an ISO timestamp, hdop, altitude and speed", () => {
    const r = record(
      query(
        "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0&altitude=224.0&speed=0.0",
      ),
    );
    expect(r).toEqual({
      device_id: "902064",
      ts: Date.UTC(2016, 0, 27, 18, 55, 47),
      location: { lat: 42.06288, lon: -88.23412 },
      metrics: { hdop: 6, altitude: 224, speed: 0 },
    });
  });

  test("epoch seconds below 2^31-1 and epoch milliseconds above it", () => {
    expect(record(query("?id=123456&timestamp=1377177267&lat=60.0&lon=30.0")).ts).toBe(1_377_177_267_000);
    expect(record(query("?id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579")).ts).toBe(1_442_068_686_579);
    expect(parseOsmAndTimestamp("2147483646")).toEqual({ ok: true, ms: 2_147_483_646_000 });
    expect(parseOsmAndTimestamp("2147483647")).toEqual({ ok: true, ms: 2_147_483_647 });
    expect(parseOsmAndTimestamp("2026-11-22T11:00:00.5+01:00")).toEqual({
      ok: true,
      ms: Date.UTC(2026, 10, 22, 10, 0, 0, 500),
    });
  });

  test("speed in knots is stored in km/h; bearing and heading are one heading metric", () => {
    const r = record(
      query("?id=123456&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571&bearing=7.19889788244&speed=40"),
    );
    expect(r.metrics).toEqual({ heading: 7.19889788244, speed: 74.08 });
    expect(record(query("?deviceid=123456&lat=60.0&lon=30.0&heading=90&speed=1")).metrics).toMatchObject({
      heading: 90,
      speed: 1.852,
    });
  });

  test("deviceid, no timestamp (the receive time), batt, and unknown numeric/boolean/string parameters", () => {
    const r = record(
      query("?id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479&speed=0.000000&batt=87"),
    );
    expect(r.ts).toBe(NOW);
    expect(r.metrics).toEqual({ altitude: 350.059479, speed: 0, battery: 87 });
    const x = record(
      query("?deviceid=123456&lat=60.0&lon=30.0&vacc=0&hacc=0&ignition=true&rpm=933&fuel=24&driverUniqueId=ab12"),
    );
    expect(x.device_id).toBe("123456");
    expect(x.metrics).toEqual({ vacc: 0, hacc: 0, rpm: 933, fuel: 24 });
    expect(x.attributes).toEqual({ ignition: true, driverUniqueId: "ab12" });
  });

  test("location=lat,lon; valid and charge as booleans; a push token is never kept", () => {
    const r = record(
      query("?id=123456&timestamp=1377177267&location=60.0,30.0&valid=0&charge=true&notificationToken=secret"),
    );
    expect(r.location).toEqual({ lat: 60, lon: 30 });
    expect(r.attributes).toEqual({ valid: false, charging: true });
    expect(JSON.stringify(r)).not.toContain("secret");
    expect(record(query("?id=1&lat=1&lon=2&valid=TRUE&batt=5")).attributes).toEqual({ valid: true });
    expect(record(query("?id=1&lat=1&lon=2&valid=1&batt=5")).attributes).toEqual({ valid: true });
  });

  test("a form body is read when the query has no parameters; a repeated parameter keeps its last value", () => {
    const p = osmandParameters(
      "",
      "id=7&lat=1.5&lon=2.5&timestamp=1700000000&cell=257,02,16,2224&cell=257,02,16,2223,-90",
    );
    const r = record(decodeOsmAnd(p, NOW));
    expect(r).toMatchObject({ device_id: "7", ts: 1_700_000_000_000, attributes: { cell: "257,02,16,2223,-90" } });
    expect(osmandParameters("?id=1", "id=2").get("id")).toBe("1");
  });

  test("a request without a position makes a record of metrics only, or one normalizeRecord refuses", () => {
    expect(record(query("?id=5&batt=40"))).toEqual({ device_id: "5", ts: NOW, metrics: { battery: 40 } });
    const bare = normalized(query("?id=123456&timestamp=1377177267&wifi=00-14-22-01-23-45,-80"));
    expect(bare.ok ? [] : bare.errors).toEqual([
      { path: "", message: "a record needs a location or at least one metric" },
    ]);
  });

  test("bad input: a specific error naming the parameter", () => {
    const cases: [string, string, string][] = [
      ["?timestamp=1377177267&lat=60.0&lon=30.0", "id", "the device id (id or deviceid) is required"],
      ["?id=&lat=1&lon=2", "id", "the device id (id or deviceid) is required"],
      ["?id=1&lat=abc&lon=2", "lat", "must be a decimal number of degrees"],
      ["?id=1&lat=1&lon=0x10", "lon", "must be a decimal number of degrees"],
      ["?id=1&lat=1", "lon", "lat was sent without lon"],
      ["?id=1&lon=1", "lat", "lon was sent without lat"],
      ["?id=1&location=1;2", "location", "must be 'lat,lon'"],
      ["?id=1&location=1,2,3", "location", "must be 'lat,lon'"],
      ["?id=1&lat=1&lon=2&speed=fast", "speed", "must be a decimal number"],
      ["?id=1&lat=1&lon=2&batt=NaN", "batt", "must be a decimal number"],
      [
        "?id=1&lat=1&lon=2&timestamp=yesterday",
        "timestamp",
        "must be epoch seconds, epoch milliseconds or ISO 8601 with an offset",
      ],
      [
        "?id=1&lat=1&lon=2&timestamp=1700000000.5",
        "timestamp",
        "must be whole epoch seconds or milliseconds, or ISO 8601 with an offset",
      ],
      [
        "?id=1&lat=1&lon=2&timestamp=-5",
        "timestamp",
        "must be whole epoch seconds or milliseconds, or ISO 8601 with an offset",
      ],
      ["?id=1&lat=1&lon=2&timestamp=99999999999999999999", "timestamp", "epoch time out of range"],
      ["?id=1&lat=1&lon=2&timestamp=2016-13-27T18:55:47Z", "timestamp", "date does not exist"],
      [
        "?id=1&lat=1&lon=2&timestamp=2014-06-04+09%3A10%3A11",
        "timestamp",
        "must be epoch seconds, epoch milliseconds or ISO 8601 with an offset",
      ],
      [
        "?id=1&lat=1&lon=2&timestamp=2016-01-27T18:55:47",
        "timestamp",
        "timestamp has no UTC offset; add 'Z' or '+hh:mm'",
      ],
    ];
    for (const [q, path, message] of cases)
      expect({ q, errors: errors(query(q)) }).toEqual({ q, errors: [{ path, message }] });
  });

  test("more parameters than the bound are refused before they are read", () => {
    const many = Array.from({ length: MAX_OSMAND_PARAMETERS + 1 }, (_, i) => `p${i}=1`).join("&");
    expect(errors(query(`?id=1&${many}`))).toEqual([
      { path: "", message: `at most ${MAX_OSMAND_PARAMETERS} parameters` },
    ]);
  });

  test("normalizeRecord takes the records, and refuses lat 91 / lon 181 / a bad device id / an old timestamp", () => {
    const ok = normalized(query("?id=902064&lat=42.06288&lon=-88.23412&timestamp=2026-11-22T10:00:00Z&speed=10"));
    expect(ok.ok && ok.reading).toMatchObject({
      deviceId: "902064",
      lat: 42.06288,
      lon: -88.23412,
      metrics: { speed: 18.52 },
    });
    const refused = (q: string) => {
      const r = normalized(query(q));
      return r.ok ? [] : r.errors;
    };
    expect(refused("?id=1&lat=91&lon=2")).toEqual([
      { path: "location.lat", message: "lat must be between -90 and 90" },
    ]);
    expect(refused("?id=1&lat=1&lon=181")).toEqual([
      { path: "location.lon", message: "lon must be between -180 and 180" },
    ]);
    expect(refused("?id=a.b&lat=1&lon=2")[0]?.path).toBe("device_id");
    expect(refused("?id=1&lat=1&lon=2&timestamp=900000000")[0]?.path).toBe("ts");
    expect(refused("?id=1&lat=1&lon=2&__proto__=1")[0]?.path).toBe("metrics.__proto__");
  });

  test("property: any position, time and speed round-trips through the query form and normalizeRecord", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -90, max: 90, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
        fc.integer({ min: Date.UTC(2001, 0, 1) / 1000, max: NOW / 1000 }),
        fc.double({ min: 0, max: 500, noNaN: true }),
        fc.boolean(),
        (lat, lon, sec, knots, ms) => {
          const ts = ms ? `${sec * 1000 + 123}` : `${sec}`;
          const q = new URLSearchParams({
            id: "dev-1",
            lat: `${lat}`,
            lon: `${lon}`,
            timestamp: ts,
            speed: `${knots}`,
          });
          const n = normalized(decodeOsmAnd(osmandParameters(q.toString()), NOW));
          expect(n.ok).toBe(true);
          if (!n.ok) return;
          expect(n.reading.ts).toBe(ms ? sec * 1000 + 123 : sec * 1000);
          expect(n.reading.lat).toBeCloseTo(lat, 6);
          expect(n.reading.lon).toBeCloseTo(lon, 6);
          expect(n.reading.metrics!.speed).toBeCloseTo(knots * 1.852, 5);
        },
      ),
    );
  });
});

const TRACCAR_DOC = {
  location: {
    timestamp: "2025-06-15T13:45:12.862Z",
    coords: { latitude: 37.4219983, longitude: -122.084, accuracy: 5, speed: 0, heading: -1, altitude: 5 },
    is_moving: false,
    odometer: 0,
    event: "motionchange",
    battery: { level: 1, is_charging: false },
    activity: { type: "still" },
    extras: {},
    _: "&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&",
  },
  device_id: "48241179",
};

describe("Traccar Client 9 JSON", () => {
  test("Traccar's example: heading -1 dropped, battery level 1 is 100 %", () => {
    expect(record(decodeTraccarJson(TRACCAR_DOC))).toEqual({
      device_id: "48241179",
      ts: Date.parse("2025-06-15T13:45:12.862Z"),
      location: { lat: 37.4219983, lon: -122.084 },
      metrics: { speed: 0, accuracy: 5, altitude: 5, odometer: 0, battery: 100 },
      attributes: { moving: false, event: "motionchange", activity: "still", charging: false },
    });
  });

  test("speed in m/s is stored in km/h; negative speed, heading and battery level mean unknown", () => {
    const moving = JSON.parse(
      '{"location":{"event":"motionchange","is_moving":false,"uuid":"0e9a2473-a9a7-4c00-997b-fb97d2154e75","timestamp":"2021-07-21T08:06:34.444Z","odometer":0,"coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,"speed":18.67,"speed_accuracy":0.26,"heading":63,"heading_accuracy":0.28,"altitude":35.7,"altitude_accuracy":3.8},"activity":{"type":"still","confidence":100},"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"8737767034"}',
    );
    expect(record(decodeTraccarJson(moving)).metrics).toEqual({
      speed: 67.212,
      heading: 63,
      accuracy: 3.8,
      altitude: 35.7,
      odometer: 0,
      battery: 79,
    });
    const unknown = JSON.parse(
      '{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,"longitude":-122.406417,"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,"latitude":37.785834000000001,"accuracy":5,"altitude_accuracy":-1,"altitude":0,"heading":-1},"is_moving":false,"age":188,"odometer":0,"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange","battery":{"level":-1,"is_charging":false},"activity":{"type":"unknown","confidence":100},"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}',
    );
    const r = record(decodeTraccarJson(unknown));
    expect(r.metrics).toEqual({ accuracy: 5, altitude: 0, odometer: 0 });
    expect(r.attributes).toMatchObject({ mock: true, activity: "unknown" });
    const below = structuredClone(TRACCAR_DOC);
    below.location.coords.altitude = -12.5;
    expect(record(decodeTraccarJson(below)).metrics?.altitude).toBe(-12.5);
  });

  test("extras: numbers become metrics, strings and booleans attributes; decoded fields win", () => {
    const body = structuredClone(TRACCAR_DOC) as { location: Record<string, unknown> };
    body.location.extras = {
      device_string_test: "long_device_id",
      device_bool_test: true,
      device_integer_twelve_test: 12,
      device_double_test: 1.345,
      nested: { a: 1 },
      speed: 999,
      event: "spoofed",
    };
    const r = record(decodeTraccarJson(body));
    expect(r.metrics).toMatchObject({ device_integer_twelve_test: 12, device_double_test: 1.345, speed: 0 });
    expect(r.attributes).toMatchObject({
      device_string_test: "long_device_id",
      device_bool_test: true,
      event: "motionchange",
    });
    expect(r.attributes).not.toHaveProperty("nested");
  });

  test("no coords: a record of metrics only", () => {
    const body = {
      device_id: "x1",
      location: { timestamp: "2026-11-22T10:00:00Z", battery: { level: 0.5, is_charging: true } },
    };
    expect(record(decodeTraccarJson(body))).toEqual({
      device_id: "x1",
      ts: Date.UTC(2026, 10, 22, 10),
      metrics: { battery: 50 },
      attributes: { charging: true },
    });
  });

  test("bad input: a specific error naming the field", () => {
    const doc = (patch: (b: Record<string, any>) => void) => {
      const b = structuredClone(TRACCAR_DOC) as Record<string, any>;
      patch(b);
      return b;
    };
    const cases: [unknown, string, string][] = [
      [[TRACCAR_DOC], "", "the body must be a JSON object"],
      [doc((b) => delete b.device_id), "device_id", "the device id is required and must be a string"],
      [doc((b) => (b.device_id = 48241179)), "device_id", "the device id is required and must be a string"],
      [doc((b) => (b.location = [b.location])), "location", "must be an object (batched uploads are not supported)"],
      [doc((b) => delete b.location.timestamp), "location.timestamp", "is required: an ISO 8601 string"],
      [doc((b) => (b.location.timestamp = 1750000000)), "location.timestamp", "is required: an ISO 8601 string"],
      [
        doc((b) => (b.location.timestamp = "2025-06-15 13:45")),
        "location.timestamp",
        "must be ISO 8601 with an offset",
      ],
      [doc((b) => (b.location.coords = "here")), "location.coords", "must be an object"],
      [doc((b) => delete b.location.coords.latitude), "location.coords.latitude", "is required"],
      [doc((b) => (b.location.coords.longitude = "30")), "location.coords.longitude", "must be a number"],
      [doc((b) => (b.location.coords.speed = "1")), "location.coords.speed", "must be a number"],
      [doc((b) => (b.location.battery = 1)), "location.battery", "must be an object"],
      [doc((b) => (b.location.battery.level = "full")), "location.battery.level", "must be a number"],
      [doc((b) => (b.location.battery.is_charging = 1)), "location.battery.is_charging", "must be a boolean"],
      [doc((b) => (b.location.is_moving = "no")), "location.is_moving", "must be a boolean"],
      [doc((b) => (b.location.event = 3)), "location.event", "must be a string"],
      [doc((b) => (b.location.activity = "still")), "location.activity", "must be an object with a string type"],
      [doc((b) => (b.location.extras = [])), "location.extras", "must be an object"],
    ];
    for (const [body, path, message] of cases) {
      expect({ path, errors: errors(decodeTraccarJson(body)) }).toEqual({ path, errors: [{ path, message }] });
    }
  });

  test("normalizeRecord takes the records, and refuses latitude 91 and a reserved extra name", () => {
    const body = doc91();
    const r = normalizeRecord(record(decodeTraccarJson(body)), opts);
    expect(r.ok ? [] : r.errors).toEqual([{ path: "location.lat", message: "lat must be between -90 and 90" }]);
    const ok = normalizeRecord(record(decodeTraccarJson(TRACCAR_DOC)), opts);
    expect(ok.ok && ok.reading).toMatchObject({
      deviceId: "48241179",
      lat: 37.4219983,
      lon: -122.084,
      ts: Date.parse("2025-06-15T13:45:12.862Z"),
    });
    const proto = JSON.parse(
      '{"device_id":"a","location":{"timestamp":"2026-11-22T10:00:00Z","coords":{"latitude":1,"longitude":2},"extras":{"__proto__":5}}}',
    );
    const p = normalizeRecord(record(decodeTraccarJson(proto)), opts);
    expect(p.ok ? [] : p.errors.map((e) => e.path)).toEqual(["metrics.__proto__"]);
  });
});

function doc91() {
  const b = structuredClone(TRACCAR_DOC);
  b.location.coords.latitude = 91;
  return b;
}
