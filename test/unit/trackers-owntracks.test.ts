/**
 * The OwnTracks HTTP-mode decoder (src/core/trackers/owntracks.ts): payloads in the format of the
 * OwnTracks booklet (owntracks.org/booklet/tech/json, /tech/http), a bad-input corpus, and the
 * records through the project's normalizeRecord.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { normalizeRecord } from "../../src/core/record.ts";
import type { DecodeResult } from "../../src/core/trackers/fields.ts";
import {
  decodeOwnTracks,
  decodeOwnTracksText,
  MAX_OWNTRACKS_BODY,
  ownTracksDeviceId,
} from "../../src/core/trackers/owntracks.ts";

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const opts = { tenant: "acme", nowMs: NOW, maxFutureMs: 3_600_000 };
const headers = { user: "jane", device: "phone" };
const record = (r: DecodeResult) => {
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  expect(r.records).toHaveLength(1);
  return r.records[0]!;
};
const errors = (r: DecodeResult) => (r.ok ? [] : r.errors);

/** Every location element the booklet lists, with values of the types it gives. */
const FULL = `{"_type":"location","_id":"8f2c41","acc":15,"alt":45,"batt":96,"bs":2,"cog":270,"lat":48.856826,"lon":2.292713,
  "rad":50,"t":"u","tid":"JP","tst":1763805600,"vac":3,"vel":54,"p":101.2,"poi":"Tour Eiffel","image":"iVBORw0KGgo=",
  "imagename":"eiffel.png","conn":"w","tag":"work","topic":"owntracks/jane/phone","inregions":["home","paris"],
  "inrids":["a1","b2"],"SSID":"cafe","BSSID":"b0:be:76:00:00:01","created_at":1763805601,"m":1}`;

describe("OwnTracks location payloads", () => {
  test("every element the booklet lists, named and in the units of docs/protocols/owntracks.md", () => {
    expect(record(decodeOwnTracksText(FULL, headers))).toEqual({
      device_id: "jane:phone",
      ts: 1_763_805_600_000,
      location: { lat: 48.856826, lon: 2.292713 },
      metrics: {
        accuracy: 15,
        altitude: 45,
        battery: 96,
        battery_status: 2,
        heading: 270,
        rad: 50,
        vertical_accuracy: 3,
        speed: 54,
        pressure: 101.2,
        m: 1,
      },
      attributes: {
        trigger: "u",
        tid: "JP",
        poi: "Tour Eiffel",
        conn: "w",
        tag: "work",
        topic: "owntracks/jane/phone",
        inregions: "home,paris",
        inrids: "a1,b2",
        ssid: "cafe",
        bssid: "b0:be:76:00:00:01",
      },
    });
  });

  test("the poster's minimal payload; negative velocity, course and accuracy mean unknown", () => {
    const r = record(
      decodeOwnTracks(
        { _type: "location", lat: 12.34, lon: 44.5, tst: 1406803894, vel: -1, cog: -1, acc: -1, alt: -3, t: "t" },
        headers,
      ),
    );
    expect(r).toEqual({
      device_id: "jane:phone",
      ts: 1_406_803_894_000,
      location: { lat: 12.34, lon: 44.5 },
      metrics: { altitude: -3 },
      attributes: { trigger: "t" },
    });
  });

  test("device identity: user:device from X-Limit-U/X-Limit-D, either alone, else the tracker id", () => {
    expect(ownTracksDeviceId({ user: "jane", device: "phone" }, "JP")).toBe("jane:phone");
    expect(ownTracksDeviceId({ user: "jane" }, "JP")).toBe("jane");
    expect(ownTracksDeviceId({ device: "phone", user: "" }, "JP")).toBe("phone");
    expect(ownTracksDeviceId({ user: null, device: null }, "JP")).toBe("JP");
    expect(ownTracksDeviceId({}, "")).toBeNull();
    expect(record(decodeOwnTracks({ _type: "location", lat: 1, lon: 2, tst: 1763805600, tid: "JP" })).device_id).toBe(
      "JP",
    );
  });

  test("other message types are nothing to store, not an error; so is an empty body", () => {
    const others = [
      {
        _type: "transition",
        wtst: 1425042603,
        lat: 12.34,
        lon: 44.5,
        tst: 1427634603,
        acc: 130,
        tid: "JP",
        event: "enter",
        desc: "my Indian restaurant",
        t: "b",
      },
      { _type: "waypoint", desc: "home", lat: 1, lon: 2, rad: 50, tst: 1427634603 },
      { _type: "waypoints", waypoints: [] },
      { _type: "lwt", tst: 1427634603 },
      { _type: "card", name: "Jane", face: "iVBORw0KGgo=" },
      { _type: "status", android: {} },
      { _type: "steps", steps: 100 },
      { _type: "beacon", uuid: "x" },
      { _type: "cmd", action: "reportLocation" },
    ];
    for (const body of others) expect(decodeOwnTracks(body, headers)).toEqual({ ok: true, records: [] });
    expect(decodeOwnTracksText("", headers)).toEqual({ ok: true, records: [] });
    expect(decodeOwnTracksText("  \n", headers)).toEqual({ ok: true, records: [] });
  });

  test("bad input: a specific error naming the field", () => {
    const base = { _type: "location", lat: 1, lon: 2, tst: 1763805600 };
    const cases: [unknown, string, string][] = [
      [[base], "", "the body must be a JSON object"],
      ["location", "", "the body must be a JSON object"],
      [{ ...base, _type: undefined }, "_type", "is required and must be a string"],
      [
        { _type: "encrypted", data: "AAAA" },
        "_type",
        "encrypted payloads are not supported: turn off encryption in the app",
      ],
      [{ ...base, lat: undefined }, "lat", "is required and must be a number"],
      [{ ...base, lat: "48.85" }, "lat", "is required and must be a number"],
      [{ ...base, lon: null }, "lon", "is required and must be a number"],
      [{ ...base, tst: undefined }, "tst", "is required: whole epoch seconds"],
      [{ ...base, tst: "1763805600" }, "tst", "is required: whole epoch seconds"],
      [{ ...base, tst: 1763805600.5 }, "tst", "is required: whole epoch seconds"],
      [{ ...base, tst: -1 }, "tst", "is required: whole epoch seconds"],
      [{ ...base, tst: 1e16 }, "tst", "is required: whole epoch seconds"],
      [{ ...base, batt: "96" }, "batt", "must be a number"],
      [{ ...base, tid: 5 }, "tid", "must be a string"],
      [{ ...base, inregions: "home" }, "inregions", "must be an array of strings"],
      [{ ...base, inregions: [1] }, "inregions", "must be an array of strings"],
    ];
    for (const [body, path, message] of cases) {
      expect({ path, errors: errors(decodeOwnTracks(body, headers)) }).toEqual({ path, errors: [{ path, message }] });
    }
    expect(errors(decodeOwnTracks(base, {}))).toEqual([
      {
        path: "tid",
        message: "no device identity: set the app's user and device id (X-Limit-U/X-Limit-D) or a tracker id",
      },
    ]);
    expect(errors(decodeOwnTracksText("{not json", headers))).toEqual([
      { path: "", message: "the body is not valid JSON" },
    ]);
    expect(errors(decodeOwnTracksText(`${" ".repeat(MAX_OWNTRACKS_BODY)}{}`, headers))).toEqual([
      { path: "", message: `the body is over ${MAX_OWNTRACKS_BODY} characters` },
    ]);
  });

  test("names of Object.prototype are not table entries: constructor is an extra, __proto__ refused by normalizeRecord", () => {
    const body = JSON.parse('{"_type":"location","lat":1,"lon":2,"tst":1763805600,"constructor":"x","__proto__":3}');
    const r = record(decodeOwnTracks(body, headers));
    expect(Object.keys(r.attributes!)).toEqual(["constructor"]);
    const n = normalizeRecord(r, opts);
    expect(n.ok ? [] : n.errors.map((e) => e.path).sort()).toEqual(["attributes.constructor", "metrics.__proto__"]);
  });

  test("normalizeRecord takes the records, and refuses lat 91, lon 181 and a user name with a space", () => {
    const ok = normalizeRecord(record(decodeOwnTracksText(FULL, headers)), opts);
    expect(ok.ok && ok.reading).toMatchObject({
      deviceId: "jane:phone",
      ts: 1_763_805_600_000,
      lat: 48.856826,
      lon: 2.292713,
      metrics: { speed: 54, battery: 96 },
    });
    const refused = (body: object, identity = headers) => {
      const n = normalizeRecord(record(decodeOwnTracks(body, identity)), opts);
      return n.ok ? [] : n.errors;
    };
    const base = { _type: "location", lat: 1, lon: 2, tst: 1763805600 };
    expect(refused({ ...base, lat: 91 })).toEqual([
      { path: "location.lat", message: "lat must be between -90 and 90" },
    ]);
    expect(refused({ ...base, lon: 181 })).toEqual([
      { path: "location.lon", message: "lon must be between -180 and 180" },
    ]);
    expect(refused(base, { user: "Jane Doe", device: "phone" })[0]?.path).toBe("device_id");
    expect(refused({ ...base, tst: 1_000_000 })[0]?.path).toBe("ts");
  });

  test("property: any location and time round-trips through normalizeRecord", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -90, max: 90, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
        fc.integer({ min: Date.UTC(2001, 0, 1) / 1000, max: NOW / 1000 }),
        fc.integer({ min: 0, max: 100 }),
        (lat, lon, tst, batt) => {
          const text = JSON.stringify({ _type: "location", lat, lon, tst, batt, tid: "ab" });
          const n = normalizeRecord(record(decodeOwnTracksText(text, headers)), opts);
          expect(n.ok).toBe(true);
          if (!n.ok) return;
          expect([n.reading.ts, n.reading.metrics]).toEqual([tst * 1000, { battery: batt }]);
          expect(n.reading.lat).toBeCloseTo(lat, 6);
          expect(n.reading.lon).toBeCloseTo(lon, 6);
        },
      ),
    );
  });
});
