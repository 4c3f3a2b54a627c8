import { describe, expect, test } from "bun:test";
import type { Envelope } from "../../src/core/envelope.ts";
import { alertMatches, formatCursor, isAfter, parseCursor, readingEvents } from "../../src/core/live-stream.ts";

describe("event ids", () => {
  test("round-trip, with and without the reading index", () => {
    for (const id of ["0-0", "1042-17", "1042.3-17"]) expect(formatCursor(parseCursor(id)!)).toBe(id);
    expect(parseCursor("1042.3-17")).toEqual({ seq: 1042, index: 3, alertSeq: 17 });
  });
  test("anything else is not an id", () => {
    for (const bad of ["", "1042", "a-1", "1.2.3-4", "-1-2", "1-2-3", "99999999999999999-0", "1 -2"])
      expect(parseCursor(bad)).toBeNull();
  });
  test("what comes after a position", () => {
    expect(isAfter({ seq: 5, index: null }, 5, 0)).toBe(false);
    expect(isAfter({ seq: 5, index: null }, 6, 0)).toBe(true);
    expect(isAfter({ seq: 5, index: 1 }, 5, 1)).toBe(false);
    expect(isAfter({ seq: 5, index: 1 }, 5, 2)).toBe(true);
    expect(isAfter({ seq: 5, index: 1 }, 4, 9)).toBe(false);
  });
});

const env: Envelope = {
  tenant: "acme",
  deviceId: "d1",
  receivedAt: 0,
  readings: [
    {
      eventId: "e0",
      tenant: "acme",
      deviceId: "d1",
      ts: 0,
      lat: 1,
      lon: 2,
      metrics: { temp: 1, hum: 2 },
      attributes: null,
    },
    {
      eventId: "e1",
      tenant: "acme",
      deviceId: "d1",
      ts: 1000,
      lat: null,
      lon: null,
      metrics: { hum: 3 },
      attributes: { a: "x" },
    },
  ],
};

describe("filters", () => {
  test("devices, and metrics (readings without them dropped, others' metrics left out)", () => {
    expect(readingEvents(env, { devices: new Set(["d2"]), metrics: null })).toEqual([]);
    const all = readingEvents(env, { devices: null, metrics: null });
    expect(all.map((e) => e.index)).toEqual([0, 1]);
    expect(all[0]!.data).toEqual({
      device_id: "d1",
      ts: "1970-01-01T00:00:00.000Z",
      location: { lat: 1, lon: 2 },
      metrics: { temp: 1, hum: 2 },
      attributes: {},
      event_id: "e0",
    });
    const temp = readingEvents(env, { devices: new Set(["d1"]), metrics: new Set(["temp"]) });
    expect(temp.map((e) => [e.index, e.data.metrics])).toEqual([[0, { temp: 1 }]]);
  });
  test("alerts by device and metric", () => {
    expect(alertMatches({ device_id: "d1", metric: "temp" }, { devices: new Set(["d1"]), metrics: null })).toBe(true);
    expect(alertMatches({ device_id: "d1", metric: null }, { devices: null, metrics: new Set(["temp"]) })).toBe(false);
    expect(alertMatches({ device_id: "d2", metric: "temp" }, { devices: new Set(["d1"]), metrics: null })).toBe(false);
  });
});
