import { describe, expect, test } from "bun:test";
import { ConfigError, describeConfig, loadConfig } from "../../src/config/load.ts";
import { parseDuration } from "../../src/core/duration.ts";

describe("config", () => {
  test("defaults are valid and typed", () => {
    const c = loadConfig({}, {});
    expect(c.roles).toEqual(["ingest", "writer", "evaluator", "api"]);
    expect(c.batchSize).toBe(2000);
    expect(c.flushInterval).toBe(1000);
    expect(c.streamMaxAge).toBe(72 * 3_600_000);
    expect(c.streamDuplicateWindow).toBe(120_000);
    expect(c.maxBodyBytes).toBe(1024 * 1024);
    expect(c.retention).toBeNull();
  });

  test("flags beat environment, environment beats defaults", () => {
    const c = loadConfig({ "batch-size": "10" }, { TELEMETRY_BATCH_SIZE: "20", PORT: "9000" });
    expect(c.batchSize).toBe(10);
    expect(c.port).toBe(9000);
  });

  test("reports one line per problem, naming the source", () => {
    try {
      loadConfig(
        { roles: "ingest,bogus" },
        { TELEMETRY_BATCH_SIZE: "abc", TELEMETRY_STREAM_MAX_AGE: "forever", DATABASE_URL: "mysql://x" },
      );
      throw new Error("should have failed");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems).toHaveLength(4);
      expect(problems.some((p) => p.startsWith("--roles:") && p.includes("bogus"))).toBe(true);
      expect(problems.some((p) => p.startsWith("TELEMETRY_BATCH_SIZE:"))).toBe(true);
      expect(problems.some((p) => p.startsWith("TELEMETRY_STREAM_MAX_AGE:"))).toBe(true);
      expect(problems.some((p) => p.startsWith("DATABASE_URL:"))).toBe(true);
    }
  });

  test("parses API keys and hides secrets when described", () => {
    const c = loadConfig(
      {},
      {
        TELEMETRY_API_KEYS: "acme:0123456789abcdef0123,beta:fedcba9876543210fedc",
        DATABASE_URL: "postgres://u:hunter2@db/x",
      },
    );
    expect(c.apiKeys.map((k) => k.tenant)).toEqual(["acme", "beta"]);
    const text = describeConfig(c).join("\n");
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("0123456789abcdef0123");
    expect(text).toContain("acme:***");
  });

  test("describes a multiple-of-retention setting as written, a duration in milliseconds", () => {
    expect(describeConfig(loadConfig({}, {}))).toContain('TELEMETRY_ROLLUP_RETENTION="4x"');
    expect(describeConfig(loadConfig({}, { TELEMETRY_ROLLUP_RETENTION: "2d" }))).toContain(
      "TELEMETRY_ROLLUP_RETENTION=172800000",
    );
  });

  test("refuses short keys and bad tenants", () => {
    expect(() => loadConfig({}, { TELEMETRY_API_KEYS: "acme:short" })).toThrow(ConfigError);
    expect(() => loadConfig({}, { TELEMETRY_API_KEYS: "Bad.Tenant:0123456789abcdef0123" })).toThrow(ConfigError);
  });

  test("keys that no request could carry are refused: spaces, non-ASCII, over 512 characters", () => {
    for (const key of ["0123456789 abcdef0123", "0123456789abcdef\u00e9", "k".repeat(513)]) {
      expect(() => loadConfig({}, { TELEMETRY_API_KEYS: `acme:${key}` })).toThrow(/visible ASCII/);
    }
  });

  test("key-check limits and trusted proxies", () => {
    const c = loadConfig({}, { TELEMETRY_TRUSTED_PROXIES: "10.0.0.0/8, ::1", TELEMETRY_AUTH_FAILURES: "5" });
    expect([c.trustedProxies, c.authFailures, c.authLookupRate]).toEqual([["10.0.0.0/8", "::1"], 5, 100]);
    expect(loadConfig({}, {}).trustedProxies).toEqual([]);
    expect(() => loadConfig({}, { TELEMETRY_TRUSTED_PROXIES: "10.0.0.0/8,proxy.local" })).toThrow(
      /TELEMETRY_TRUSTED_PROXIES: .*not: proxy.local/,
    );
    expect(() => loadConfig({}, { TELEMETRY_AUTH_LOOKUP_RATE: "0" })).toThrow(ConfigError);
  });

  test("durations", () => {
    expect(parseDuration("72h")).toBe(259_200_000);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("250")).toBe(250);
    expect(parseDuration("5 parsecs")).toBeNull();
  });
});
