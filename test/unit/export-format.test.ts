/** The export's line formats (src/core/export-format.ts), without a database. */
import { describe, expect, test } from "bun:test";
import { csvLines, type ExportRow, ndjsonLines } from "../../src/core/export-format.ts";

const ts = new Date(Date.UTC(2026, 10, 30, 8, 0, 0, 5));
const row = (over: Partial<ExportRow>): ExportRow => ({
  device_id: "truck-1",
  ts,
  event_id: "118b9bbb-4ebb-5c49-9998-7290b5374396",
  lat: 52.52,
  lon: 13.405,
  metrics: { speed: 61.5, temp: -2 },
  attributes: null,
  ...over,
});

describe("CSV, long format", () => {
  test("one line per metric; a position without metrics is one line with metric and value empty", () => {
    expect(
      csvLines([row({}), row({ lat: null, lon: null, metrics: { speed: 1e-7 } }), row({ metrics: null })], null),
    ).toBe(
      [
        "2026-11-30T08:00:00.005Z,truck-1,118b9bbb-4ebb-5c49-9998-7290b5374396,52.52,13.405,speed,61.5",
        "2026-11-30T08:00:00.005Z,truck-1,118b9bbb-4ebb-5c49-9998-7290b5374396,52.52,13.405,temp,-2",
        "2026-11-30T08:00:00.005Z,truck-1,118b9bbb-4ebb-5c49-9998-7290b5374396,,,speed,1e-7",
        "2026-11-30T08:00:00.005Z,truck-1,118b9bbb-4ebb-5c49-9998-7290b5374396,52.52,13.405,,",
        "",
      ].join("\n"),
    );
  });
  test("a metric filter keeps only those metrics, in the filter's order", () => {
    expect(csvLines([row({})], ["temp", "nope"])).toBe(
      "2026-11-30T08:00:00.005Z,truck-1,118b9bbb-4ebb-5c49-9998-7290b5374396,52.52,13.405,temp,-2\n",
    );
  });
});

describe("NDJSON, the ingest record shape", () => {
  test("location and metrics when present, attributes when not empty; no event id (it is derived)", () => {
    const out = ndjsonLines(
      [row({ attributes: { fw: "1.2", on: true, note: null } }), row({ lat: null, lon: null, attributes: {} })],
      null,
    );
    expect(out.endsWith("\n")).toBe(true);
    expect(
      out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual([
      {
        device_id: "truck-1",
        ts: "2026-11-30T08:00:00.005Z",
        location: { lat: 52.52, lon: 13.405 },
        metrics: { speed: 61.5, temp: -2 },
        attributes: { fw: "1.2", on: true, note: null },
      },
      { device_id: "truck-1", ts: "2026-11-30T08:00:00.005Z", metrics: { speed: 61.5, temp: -2 } },
    ]);
  });
  test("a metric filter that leaves none drops the metrics field", () => {
    expect(JSON.parse(ndjsonLines([row({})], ["rpm"]))).toEqual({
      device_id: "truck-1",
      ts: "2026-11-30T08:00:00.005Z",
      location: { lat: 52.52, lon: 13.405 },
    });
  });
});
