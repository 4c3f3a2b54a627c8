import { expect, test } from "bun:test";
import { describeRejections, MQTT_MAX_RECORDS, parseMqttPayload, parseMqttSubject } from "../../src/core/mqtt.ts";
import { isBcrypt, renderUsers } from "../../src/core/mqtt-users.ts";

const at = { tenant: "acme", deviceId: "truck-1", nowMs: Date.UTC(2026, 0, 2), maxFutureMs: 3_600_000 };

test("device subjects parse; anything else does not", () => {
  expect(parseMqttSubject("tenant.acme.device.truck-1.telemetry")).toEqual({ tenant: "acme", deviceId: "truck-1" });
  for (const s of [
    "tenant.acme.device.truck-1.status",
    "tenant.Acme.device.t.telemetry",
    "tenant.acme.device.telemetry",
    "x.acme.device.t.telemetry",
    "tenant.acme.device.a b.telemetry",
  ]) {
    expect(parseMqttSubject(s)).toBeNull();
  }
});

test("one record or an array; the device comes from the topic and must match when given", () => {
  const one = parseMqttPayload(JSON.stringify({ ts: "2026-01-01T00:00:00Z", metrics: { v: 1 } }), at);
  expect("error" in one ? one : one.readings.map((r) => [r.deviceId, r.tenant, r.ts])).toEqual([
    ["truck-1", "acme", Date.UTC(2026, 0, 1)],
  ]);
  const many = parseMqttPayload(
    JSON.stringify([
      { ts: "2026-01-01T00:00:00Z", metrics: { v: 1 } },
      { device_id: "truck-1", ts: "2026-01-01T00:01:00Z", metrics: { v: 2 } },
      { device_id: "other", ts: "2026-01-01T00:02:00Z", metrics: { v: 3 } },
      7,
    ]),
    at,
  );
  if ("error" in many) throw new Error(many.error);
  expect(many.readings).toHaveLength(2);
  expect(many.rejected.map((r) => r.index)).toEqual([2, 3]);
  expect(describeRejections(many.rejected)).toBe(
    "record 2: device_id: must be the topic's device (truck-1) or left out | record 3: a record must be a JSON object",
  );
});

test("the same message gives the same event ids (a redelivery is a duplicate)", () => {
  const text = JSON.stringify({ ts: "2026-01-01T00:00:00Z", metrics: { v: 1 } });
  const a = parseMqttPayload(text, at);
  const b = parseMqttPayload(text, { ...at, nowMs: at.nowMs + 5_000 });
  if ("error" in a || "error" in b) throw new Error("unexpected");
  expect(a.readings[0]!.eventId).toBe(b.readings[0]!.eventId);
});

test("not JSON, empty and oversized messages are refused as a whole", () => {
  expect(parseMqttPayload("{", at)).toEqual({
    error: "payload is not JSON (expected a record object or an array of records)",
  });
  expect(parseMqttPayload("[]", at)).toEqual({ error: "empty array: no records" });
  expect(
    "error" in parseMqttPayload(JSON.stringify(Array(MQTT_MAX_RECORDS + 1).fill({ ts: "2026-01-01T00:00:00Z" })), at),
  ).toBe(true);
});

test("users: the internal user is standard-only; each key may publish only to its tenant's device topics", () => {
  const text = renderUsers([
    { prefix: "Zz9", tenant: "beta", mqttHash: "$2b$06$x" },
    { prefix: "Aa1", tenant: "acme", mqttHash: "$2b$06$y" },
  ]);
  const lines = text.split("\n").filter((l) => l.includes("user:"));
  expect(lines).toHaveLength(3);
  expect(lines[0]).toContain('allowed_connection_types: ["STANDARD"]');
  expect(lines[1]).toContain(
    'user: "Aa1", password: "$2b$06$y", allowed_connection_types: ["MQTT"], permissions: { publish: { allow: ["tenant.acme.device.*.telemetry"] }, subscribe: { allow: ["routes.v1.acme", "routes.v1.acme.>"] } }',
  );
  expect(lines[2]).toContain('"tenant.beta.device.*.telemetry"');
});

test("users: a device key may publish only to its own device's topic", () => {
  const text = renderUsers([
    { prefix: "Dd1", tenant: "acme", device: "truck-1", mqttHash: "$2b$06$d" },
    { prefix: "Tt1", tenant: "acme", device: null, mqttHash: "$2b$06$t" },
  ]);
  const [, device, tenant] = text.split("\n").filter((l) => l.includes("user:"));
  expect(device).toContain('user: "Dd1"');
  expect(device).toContain('publish: { allow: ["tenant.acme.device.truck-1.telemetry"] }');
  expect(tenant).toContain('publish: { allow: ["tenant.acme.device.*.telemetry"] }');
});

test("users for an operator's nats-server: no internal user unless given (bcrypt), a header of one's own", () => {
  const keys = [{ prefix: "Aa1", tenant: "acme", mqttHash: "$2b$06$y" }];
  const bare = renderUsers(keys, { internal: null, header: "# mine" });
  expect(bare.startsWith("# mine\nauthorization {\n")).toBe(true);
  expect(bare).not.toContain("telemetry-internal");
  expect(bare.split("\n").filter((l) => l.includes("user:"))).toHaveLength(1);
  const hash = `$2a$11$${"a".repeat(53)}`;
  const withInternal = renderUsers(keys, { internal: { user: "svc", password: hash } });
  expect(withInternal).toContain(`{ user: "svc", password: "${hash}", allowed_connection_types: ["STANDARD"] }`);
  expect(isBcrypt(hash)).toBe(true);
  expect(isBcrypt(`$2b$06$${"Z/.9".repeat(13)}x`)).toBe(true);
  expect(isBcrypt("a plain password")).toBe(false);
  expect(isBcrypt("$2a$11$short")).toBe(false);
});

test("a reserved metric or attribute name rejects that record (same check as HTTP), not just the name", () => {
  const text = `[{"ts":"2026-01-01T00:00:00Z","metrics":{"v":1,"__proto__":2}},{"ts":"2026-01-01T00:01:00Z","metrics":{"v":1},"attributes":{"constructor":"x"}},{"ts":"2026-01-01T00:02:00Z","metrics":{"v":3}}]`;
  const r = parseMqttPayload(text, at);
  if ("error" in r) throw new Error(r.error);
  expect(r.readings.map((x) => x.metrics)).toEqual([{ v: 3 }]);
  expect(r.rejected.map((x) => [x.index, x.errors.map((e) => e.path)])).toEqual([
    [0, ["metrics.__proto__"]],
    [1, ["attributes.constructor"]],
  ]);
  expect(describeRejections(r.rejected)).toContain("record 0: metrics.__proto__: '__proto__' is a reserved name");
});
