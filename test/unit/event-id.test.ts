import { describe, expect, test } from "bun:test";
import { v5 } from "uuid";
import {
  canonicalName,
  coordinateText,
  EVENT_NAMESPACE,
  eventId,
  groupMessageId,
  uuidv5,
} from "../../src/core/event-id.ts";
import { toIso } from "../../src/core/timestamp.ts";
import { assetHash, telemetrySubject } from "../../src/core/subject.ts";

const id = { tenant: "acme", deviceId: "truck-1", ts: Date.UTC(2026, 10, 22, 10, 0, 0, 5), lat: 52.5200066, lon: -0.1 };

describe("event ids", () => {
  test("the namespace is UUIDv5 of telemetry.event.v1 in the URL namespace", () => {
    expect(EVENT_NAMESPACE).toBe(v5("telemetry.event.v1", v5.URL));
  });

  test("canonical form is exactly as documented", () => {
    expect(canonicalName(id)).toBe("v1|acme|truck-1|2026-11-22T10:00:00.005Z|52.5200066|-0.1000000");
    expect(canonicalName({ ...id, lat: null, lon: null })).toBe("v1|acme|truck-1|2026-11-22T10:00:00.005Z||");
  });

  test("a line-protocol identity suffix extends the canonical form; without one nothing changes", () => {
    const lp = { ...id, lat: null, lon: null, suffix: "lp|cpu|idle,usage" };
    expect(canonicalName(lp)).toBe("v1|acme|truck-1|2026-11-22T10:00:00.005Z|||lp|cpu|idle,usage");
    expect(eventId(lp)).toBe(v5("v1|acme|truck-1|2026-11-22T10:00:00.005Z|||lp|cpu|idle,usage", EVENT_NAMESPACE));
    expect(eventId({ ...id, suffix: undefined })).toBe(eventId(id));
  });

  test("ids are stable forever (pinned values)", () => {
    expect(eventId(id)).toBe(v5("v1|acme|truck-1|2026-11-22T10:00:00.005Z|52.5200066|-0.1000000", EVENT_NAMESPACE));
    // Cross-checked with Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "telemetry.event.v1"), name)
    expect(eventId(id)).toBe("118b9bbb-4ebb-5c49-9998-7290b5374396");
  });

  test("every identifying field changes the id", () => {
    const base = eventId(id);
    expect(eventId({ ...id, tenant: "other" })).not.toBe(base);
    expect(eventId({ ...id, deviceId: "truck-2" })).not.toBe(base);
    expect(eventId({ ...id, ts: id.ts + 1 })).not.toBe(base);
    expect(eventId({ ...id, lat: 52.5200067 })).not.toBe(base);
    expect(eventId({ ...id, lat: null, lon: null })).not.toBe(base);
  });

  test("coordinate text is exact for edge values", () => {
    expect(coordinateText(0)).toBe("0.0000000");
    expect(coordinateText(-0)).toBe("0.0000000");
    expect(coordinateText(-180)).toBe("-180.0000000");
    expect(coordinateText(0.0000001)).toBe("0.0000001");
    expect(coordinateText(-89.9999999)).toBe("-89.9999999");
    // The first formula (padStart and slices), on coordinates spread over the range, 0–7 decimals.
    const reference = (value: number) => {
      const scaled = Math.round(Math.abs(value) * 1e7);
      const digits = String(scaled).padStart(8, "0");
      return `${value < 0 && scaled !== 0 ? "-" : ""}${digits.slice(0, -7)}.${digits.slice(-7)}`;
    };
    for (let i = 0; i < 20_000; i++) {
      const raw = (((i * 2_654_435_761) % 3_600_000_001) - 1_800_000_000) / 1e7; // spread over [-180, 180]
      const v = Math.round(raw * 10 ** (i % 8)) / 10 ** (i % 8);
      expect(coordinateText(v)).toBe(reference(v));
    }
  });

  test("a one-event message uses the event id; a group id depends on members and order", () => {
    const a = eventId(id);
    const b = eventId({ ...id, ts: id.ts + 1 });
    expect(groupMessageId([a])).toBe(a);
    expect(groupMessageId([a, b])).not.toBe(groupMessageId([b, a]));
    expect(groupMessageId([a, b])).toBe(groupMessageId([a, b]));
  });
});

describe("the fast paths agree with the reference ones", () => {
  // A small deterministic generator: the same cases every run.
  const random = (() => {
    let seed = 17;
    return () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
  })();

  test("toIso is toISOString, on random times and at the edges of its fast range", () => {
    const times = [0, 1, 999, 86_399_999, 86_400_000, Date.UTC(2000, 0, 1), Date.UTC(2024, 1, 29, 23, 59, 59, 999)];
    times.push(253_402_300_799_999, 253_402_300_800_000, -1, -86_400_001, 8.64e15, -8.64e15, 1.5);
    for (let i = 0; i < 20_000; i++) {
      const span = i % 3 === 0 ? 253_402_300_800_000 : i % 3 === 1 ? 4e12 : 86_400_000 * 3;
      const base = i % 3 === 2 ? 1_796_000_000_000 : 0;
      times.push(base + Math.floor(random() * span));
    }
    for (const ms of times) expect(toIso(ms)).toBe(new Date(ms).toISOString());
    expect(() => toIso(Number.NaN)).toThrow(RangeError);
  });

  test("uuidv5 is the uuid library's v5, for short, long and non-ASCII names", () => {
    const names = ["", "a", "caf\u00e9|\u20ac|\u{1F600}", "x".repeat(5_000), "\u20ac".repeat(2_000)];
    // Around the reused buffer's room (1,024 bytes less the namespace's 16): fits, and just does not.
    names.push("y".repeat(1_008), "y".repeat(1_009), `${"y".repeat(1_006)}\u20ac`, `${"y".repeat(1_005)}\u20ac`);
    for (let i = 0; i < 300; i++)
      names.push(
        `v1|t${i}|${String.fromCharCode(...Array.from({ length: i % 40 }, () => 32 + Math.floor(random() * 20_000)))}`,
      );
    for (const name of names) expect(uuidv5(name)).toBe(v5(name, EVENT_NAMESPACE));
  });
});

describe("subjects", () => {
  test("asset token is 16 hex chars of SHA-256 of the device id", () => {
    expect(assetHash("truck-1")).toMatch(/^[0-9a-f]{16}$/);
    expect(telemetrySubject("acme", "truck-1")).toBe(`telemetry.v1.acme.${assetHash("truck-1")}`);
  });

  test("device ids with subject metacharacters never reach the subject", () => {
    for (const dev of ["a.b", "*", ">", "a b", "\u0000", "caf\u00e9"]) {
      expect(telemetrySubject("acme", dev).split(".")).toHaveLength(4);
    }
  });

  test("refuses tenant ids that are not a safe token", () => {
    for (const t of ["a.b", "*", "A", "", "a b"]) expect(() => telemetrySubject(t, "d")).toThrow();
  });
});
