import { describe, expect, test } from "bun:test";
import {
  afterCreateFailed,
  decideMode,
  isPreloaded,
  listsTimescale,
  planPreload,
  type PreloadFacts,
  type ServerFacts,
} from "../../src/core/timescale.ts";
import { rollupRetentionMs } from "../../src/core/retention.ts";
import { loadConfig } from "../../src/config/load.ts";

const PG15 = "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu";
const facts = (over: Partial<ServerFacts> = {}): ServerFacts => ({
  inDatabase: false,
  available: true,
  preloadLibraries: "",
  settingsDefined: false,
  version: PG15,
  ...over,
});

describe("decideMode: decided before CREATE EXTENSION is tried", () => {
  test("shared_preload_libraries spellings", () => {
    for (const yes of [
      "timescaledb",
      "pg_stat_statements, timescaledb",
      '"timescaledb"',
      "$libdir/timescaledb",
      "/opt/lib/timescaledb.so",
    ])
      expect(listsTimescale(yes)).toBe(true);
    for (const no of ["", "pg_stat_statements", "timescaledb_toolkit", "my_timescaledb"])
      expect(listsTimescale(no)).toBe(false);
  });

  test("preloaded: listed, its settings defined (the list may be hidden from a non-superuser), or a WebAssembly build (PGlite)", () => {
    expect(isPreloaded(facts())).toBe(false);
    expect(isPreloaded(facts({ preloadLibraries: "timescaledb" }))).toBe(true);
    expect(isPreloaded(facts({ preloadLibraries: "(not visible to this role)", settingsDefined: true }))).toBe(true);
    expect(
      isPreloaded(
        facts({
          version:
            "PostgreSQL 17.5 on aarch64-unknown-linux-gnu, compiled by emcc (Emscripten gcc/clang-like replacement) 3.1.74, 32-bit",
        }),
      ),
    ).toBe(true);
  });

  test("installed, not preloaded: auto is plain with a warning naming the fix, on fails with it; neither tries", () => {
    const auto = decideMode("auto", facts({ preloadLibraries: "pg_stat_statements" }));
    expect(auto.action).toBe("plain");
    expect(auto.action === "plain" && auto.warning).toMatch(
      /installed but not preloaded \(shared_preload_libraries = 'pg_stat_statements'\); using plain PostgreSQL\. To use TimescaleDB: add timescaledb to shared_preload_libraries .* restart PostgreSQL, then run `telemetry migrate`/,
    );
    const on = decideMode("on", facts());
    expect(on.action === "fail" && on.message).toMatch(
      /^TELEMETRY_TIMESCALE=on but the timescaledb extension is installed but not preloaded.*restart PostgreSQL/,
    );
  });

  test("the other cases", () => {
    expect(decideMode("auto", facts({ preloadLibraries: "timescaledb" }))).toEqual({ action: "create" });
    expect(decideMode("on", facts({ preloadLibraries: "timescaledb" }))).toEqual({ action: "create" });
    expect(decideMode("auto", facts({ inDatabase: true, preloadLibraries: "timescaledb" }))).toEqual({ action: "use" });
    expect(decideMode("auto", facts({ available: false }))).toEqual({ action: "plain" });
    expect(decideMode("off", facts({ preloadLibraries: "timescaledb" }))).toEqual({ action: "plain" });
    expect(decideMode("on", facts({ available: false }))).toMatchObject({
      action: "fail",
      message: expect.stringMatching(/not installed/),
    });
    // The extension is in the database but no longer preloaded: every use would end the connection.
    expect(decideMode("auto", facts({ inDatabase: true }))).toMatchObject({
      action: "fail",
      message: expect.stringMatching(/does not preload it.*shared_preload_libraries/),
    });
  });

  test("a failed attempt: auto plain with the reason, on an error with it", () => {
    expect(afterCreateFailed("auto", "boom")).toMatchObject({
      action: "plain",
      warning: expect.stringMatching(/could not be enabled \(boom\); using plain PostgreSQL/),
    });
    expect(afterCreateFailed("on", "boom")).toMatchObject({
      action: "fail",
      message: expect.stringMatching(/^TELEMETRY_TIMESCALE=on but .*\(boom\)/),
    });
  });
});

describe("planPreload: the supervised PostgreSQL", () => {
  const plan = (over: Partial<PreloadFacts>) =>
    planPreload({ installed: true, fresh: false, marker: undefined, wanted: "auto", ...over });

  test("a new data dir gets TimescaleDB whenever it is installed (not with off)", () => {
    expect(plan({ fresh: true })).toMatchObject({ preload: true, marker: "timescaledb", warn: false });
    expect(plan({ fresh: true, wanted: "on" })).toMatchObject({ preload: true, marker: "timescaledb" });
    expect(plan({ fresh: true, wanted: "off" })).toMatchObject({ preload: false, marker: "postgresql" });
    expect(plan({ fresh: true, installed: false })).toMatchObject({
      preload: false,
      marker: "postgresql",
      warn: false,
    });
  });

  test("a plain data dir (marked, or older than markers) stays plain until on; a TimescaleDB one keeps its preload", () => {
    for (const marker of ["postgresql", undefined] as const) {
      expect(plan({ marker })).toMatchObject({
        preload: false,
        marker: "postgresql",
        warn: true,
        reason: expect.stringMatching(/stays plain.*telemetry migrate --timescale on/),
      });
      expect(plan({ marker, wanted: "on" })).toMatchObject({ preload: true, marker: "timescaledb" });
      expect(plan({ marker, installed: false })).toMatchObject({ preload: false, marker: "postgresql", warn: false });
    }
    expect(plan({ marker: "timescaledb", wanted: "off" })).toMatchObject({ preload: true, marker: "timescaledb" });
    expect(plan({ marker: "timescaledb", installed: false })).toMatchObject({
      preload: false,
      marker: "timescaledb",
      warn: true,
      reason: expect.stringMatching(/no longer installed/),
    });
  });
});

describe("TELEMETRY_ROLLUP_RETENTION", () => {
  const cfg = (env: Record<string, string>) => {
    const c = loadConfig({}, env);
    return rollupRetentionMs(c.retention, c.rollupRetention);
  };

  test("default 4x the readings' retention; off while that is off", () => {
    expect(cfg({})).toBeNull();
    expect(cfg({ TELEMETRY_RETENTION: "90d" })).toBe(360 * 86_400_000);
    expect(cfg({ TELEMETRY_RETENTION: "90d", TELEMETRY_ROLLUP_RETENTION: "2.5x" })).toBe(225 * 86_400_000);
  });

  test("a duration of its own, or off", () => {
    expect(cfg({ TELEMETRY_ROLLUP_RETENTION: "400d" })).toBe(400 * 86_400_000);
    expect(cfg({ TELEMETRY_RETENTION: "30d", TELEMETRY_ROLLUP_RETENTION: "off" })).toBeNull();
  });

  test("bad values are refused with the accepted forms", () => {
    for (const bad of ["0.5x", "x", "forever", "-1d"]) {
      expect(() => loadConfig({}, { TELEMETRY_ROLLUP_RETENTION: bad })).toThrow(
        /TELEMETRY_ROLLUP_RETENTION: must be a duration like 400d, a multiple of TELEMETRY_RETENTION like 4x/,
      );
    }
  });
});
