/** The tracker sources' pure helpers: the logged path hides keys; refused devices are recorded once per interval, in bounded memory. */
import { expect, test } from "bun:test";
import { loggedPath } from "../../src/http/app.ts";
import { RefusalLog } from "../../src/ingest/sources/tracker.ts";

test("loggedPath redacts what follows a secret prefix, matched by a route or not, in any case", () => {
  const secret = ["/osmand/", "/owntracks/"];
  expect(loggedPath("/osmand/abc123", secret)).toBe("/osmand/[redacted]");
  expect(loggedPath("/osmand/abc123/more/parts", secret)).toBe("/osmand/[redacted]");
  expect(loggedPath("/OsmAnd/abc123", secret)).toBe("/osmand/[redacted]");
  expect(loggedPath("/owntracks/abc123", secret)).toBe("/owntracks/[redacted]");
  expect(loggedPath("/osmand", secret)).toBe("/osmand");
  expect(loggedPath("/osmand/", secret)).toBe("/osmand/");
  expect(loggedPath("/api/v1/telemetry", secret)).toBe("/api/v1/telemetry");
  // The OsmAnd port: every path is a key, except the probes.
  expect(loggedPath("/abc123", ["/"])).toBe("/[redacted]");
  expect(loggedPath("/", ["/"])).toBe("/");
  expect(loggedPath("/health", ["/"])).toBe("/health");
});

test("RefusalLog: once per key per interval, again after it; the map stays bounded", () => {
  let now = 0;
  const log = new RefusalLog(1_000, () => now);
  expect(log.take("a")).toBe(true);
  expect(log.take("a")).toBe(false);
  expect(log.take("b")).toBe(true);
  now = 999;
  expect(log.take("a")).toBe(false);
  now = 1_000;
  expect(log.take("a")).toBe(true);
  // 20,000 distinct devices: the oldest are forgotten (and may be recorded again), memory bounded.
  for (let i = 0; i < 20_000; i++) log.take(`d${i}`);
  expect((log as unknown as { last: Map<string, number> }).last.size).toBeLessThanOrEqual(10_000);
  expect(log.take("d19999")).toBe(false);
  expect(log.take("d0")).toBe(true);
});
