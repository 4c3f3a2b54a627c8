/** Message routes, pure part: conditions, filters, the subjects a tenant may republish to. */
import { describe, expect, test } from "bun:test";
import type { Reading } from "../../src/core/record.ts";
import { encodeEnvelope } from "../../src/core/envelope.ts";
import {
  batchId,
  chunk,
  compileFilter,
  filterSchema,
  parseCondition,
  republishSubject,
  routeSubscribeSubjects,
} from "../../src/core/routes.ts";
import { decodedCache } from "../../src/notify/route-decoded.ts";

const reading = (deviceId: string, metrics: Record<string, number> | null, extra: Partial<Reading> = {}): Reading => ({
  eventId: "00000000-0000-4000-8000-000000000001",
  tenant: "acme",
  deviceId,
  ts: Date.UTC(2026, 0, 1),
  lat: null,
  lon: null,
  metrics,
  attributes: null,
  ...extra,
});

describe("parseCondition", () => {
  test("metric, operator, number", () => {
    expect(parseCondition("speed > 80")).toEqual({ metric: "speed", op: ">", value: 80 });
    expect(parseCondition("engine.temp>=-1.5e2")).toEqual({ metric: "engine.temp", op: ">=", value: -150 });
    expect(parseCondition(" a != 0 ")).toEqual({ metric: "a", op: "!=", value: 0 });
  });
  test("anything else is refused", () => {
    for (const bad of [
      "speed >> 80",
      "speed > ",
      "> 80",
      "speed > eighty",
      "speed ~ 1",
      "sp eed > 1",
      "speed > 1 or 1=1",
    ])
      expect(parseCondition(bad)).toBeNull();
  });
});

describe("compileFilter", () => {
  test("devices, pattern, metrics and condition all must hold; only the filter's metrics are forwarded", () => {
    const f = compileFilter(
      filterSchema.parse({ device_pattern: "veh-*", metrics: ["speed"], condition: "speed > 80" }),
    );
    expect(f(reading("veh-1", { speed: 90, temp: 3 }))).toMatchObject({ device_id: "veh-1", metrics: { speed: 90 } });
    expect(f(reading("veh-1", { speed: 90, temp: 3 }))?.metrics).toEqual({ speed: 90 });
    expect(f(reading("veh-1", { speed: 80 }))).toBeNull();
    expect(f(reading("car-1", { speed: 90 }))).toBeNull();
    expect(f(reading("veh-1", { temp: 90 }))).toBeNull();
    const list = compileFilter(filterSchema.parse({ devices: ["a", "b"] }));
    expect(list(reading("a", null, { lat: 1, lon: 2 }))).toMatchObject({ lat: 1, lon: 2 });
    expect(list(reading("c", { x: 1 }))).toBeNull();
    expect(compileFilter({})(reading("any", { x: 1 }))?.ts).toBe("2026-01-01T00:00:00.000Z");
  });
  test("a pattern is a glob, not a regular expression", () => {
    const f = compileFilter(filterSchema.parse({ device_pattern: "v?h-*" }));
    expect(f(reading("veh-1", null))).not.toBeNull();
    expect(f(reading("vh-1", null))).toBeNull();
    expect(filterSchema.safeParse({ device_pattern: "veh.(+)" }).success).toBe(false);
    expect(filterSchema.safeParse({ devices: ["a"], device_pattern: "a*" }).success).toBe(false);
  });
});

describe("republishSubject", () => {
  test("the default and the tenant's own subjects; never another tenant's, never wildcards", () => {
    expect(republishSubject("acme", "hot", { type: "nats" })).toEqual({ subject: "routes.v1.acme.hot" });
    expect(republishSubject("acme", "hot", { type: "nats", subject: "routes.v1.acme.fleet.fast" })).toEqual({
      subject: "routes.v1.acme.fleet.fast",
    });
    expect(republishSubject("acme", "hot", { type: "mqtt", topic: "routes/v1/acme/x" })).toEqual({
      subject: "routes.v1.acme.x",
    });
    for (const subject of [
      "routes.v1.beta.x",
      "routes.v1.acme",
      "routes.v1.acme.*",
      "routes.v1.acme.>",
      "alerts.v1.acme.x",
      "routes.v1.acmex.y",
    ])
      expect(republishSubject("acme", "hot", { type: "nats", subject })).toHaveProperty("error");
    expect(republishSubject("acme", "hot", { type: "mqtt", topic: "routes/v1/acme/#" })).toHaveProperty("error");
    expect(routeSubscribeSubjects("acme")).toEqual(["routes.v1.acme", "routes.v1.acme.>"]);
  });
});

test("chunk splits into batches of at most max", () => {
  expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  expect(chunk([], 2)).toEqual([]);
});

describe("batchId", () => {
  test("the same route, filter, range and index give the same id; any difference another", () => {
    const id = batchId("r1", '{"a":1}', 10, 20, 0);
    expect(batchId("r1", '{"a":1}', 10, 20, 0)).toBe(id);
    for (const other of [
      batchId("r2", '{"a":1}', 10, 20, 0),
      batchId("r1", '{"a":2}', 10, 20, 0),
      batchId("r1", '{"a":1}', 11, 20, 0),
      batchId("r1", '{"a":1}', 10, 21, 0),
      batchId("r1", '{"a":1}', 10, 20, 1),
    ])
      expect(other).not.toBe(id);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe("decodedCache", () => {
  const reading = (n: number): Reading => ({
    eventId: `00000000-0000-5000-8000-${String(n).padStart(12, "0")}`,
    tenant: "acme",
    deviceId: "veh-1",
    ts: 1_767_225_600_000 + n,
    lat: null,
    lon: null,
    metrics: { speed: n },
    attributes: null,
  });
  const data = (n: number) => new TextEncoder().encode(encodeEnvelope([reading(n)], 0));

  test("a message is decoded once while it is held; not an envelope gives null", () => {
    const cache = decodedCache();
    const first = cache.readings(1, data(1));
    expect(first?.[0]?.metrics?.speed).toBe(1);
    expect(cache.readings(1, new Uint8Array())).toBe(first); // held: not decoded again
    expect(cache.readings(2, new TextEncoder().encode("not json"))).toBeNull();
  });

  test("bounded by the messages' size: the oldest go first", () => {
    const size = data(1).length;
    const cache = decodedCache(size * 2);
    for (const n of [1, 2, 3]) cache.readings(n, data(n));
    expect(cache.readings(3, new Uint8Array())?.[0]?.metrics?.speed).toBe(3);
    expect(cache.readings(1, new TextEncoder().encode("gone"))).toBeNull(); // evicted: decoded again
  });
});
