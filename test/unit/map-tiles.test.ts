/** The dashboard map's tile URL template: what it must contain, and what the page's CSP allows for it. */
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import { tileSource } from "../../src/core/map-tiles.ts";

describe("tileSource", () => {
  test("OpenStreetMap's template: its origin", () => {
    expect(tileSource("https://tile.openstreetmap.org/{z}/{x}/{y}.png")).toEqual({
      template: "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
      cspSource: "https://tile.openstreetmap.org",
    });
  });
  test("{s} as the host's first label: a wildcard of the rest; a port is kept", () => {
    expect(tileSource("https://{s}.tiles.example.org:8443/osm/{z}/{x}/{y}{r}.png")).toMatchObject({
      cspSource: "https://*.tiles.example.org:8443",
    });
    expect(tileSource("http://10.0.0.5:8080/{z}/{x}/{y}.png")).toMatchObject({ cspSource: "http://10.0.0.5:8080" });
  });
  test("a path on this server: 'self'", () => {
    expect(tileSource("/tiles/{z}/{x}/{y}.png")).toMatchObject({ cspSource: "'self'" });
  });
  test.each([
    ["https://tile.example.org/{z}/{x}.png", "must contain {z}, {x} and {y}"],
    ["ftp://tile.example.org/{z}/{x}/{y}.png", "http(s) URL"],
    ["https://tiles-{s}.example.org/{z}/{x}/{y}.png", "first label of the host"],
    ["https://tile.example.org/{z}/{x}/{y}.png; script-src *", "must not contain"],
    ["//tile.example.org/{z}/{x}/{y}.png", "http(s) URL"],
    ["https://user:pw@tile.example.org/{z}/{x}/{y}.png", "credentials"],
  ])("%s is refused", (template, message) => {
    const r = tileSource(template);
    expect("error" in r && r.error).toContain(message);
  });
});

test("the settings: defaults, and a bad template is a config error naming the variable", () => {
  const config = loadConfig({}, {});
  expect(config.mapTileUrl.template).toBe("https://tile.openstreetmap.org/{z}/{x}/{y}.png");
  expect(config.mapAttribution).toBe("© OpenStreetMap contributors");
  expect(config.mapMaxZoom).toBe(19);
  expect(() => loadConfig({}, { TELEMETRY_MAP_TILE_URL: "https://x.org/tiles.png" })).toThrow(/TELEMETRY_MAP_TILE_URL/);
  expect(() => loadConfig({}, { TELEMETRY_MAP_ATTRIBUTION_URL: "javascript:alert(1)" })).toThrow(
    /TELEMETRY_MAP_ATTRIBUTION_URL/,
  );
});
