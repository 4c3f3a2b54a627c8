import { describe, expect, test } from "bun:test";
import { Batch } from "../../src/core/batch.ts";
import { decodeEnvelope, encodeEnvelope, EnvelopeError } from "../../src/core/envelope.ts";
import { planMessages } from "../../src/core/plan.ts";
import { normalizeRecord, type Reading } from "../../src/core/record.ts";

const NOW = Date.UTC(2026, 10, 22, 12);
function reading(device: string, minute: number, extra: Record<string, unknown> = {}): Reading {
  const r = normalizeRecord(
    { device_id: device, ts: NOW - 3_600_000 + minute * 60_000, metrics: { v: minute }, ...extra },
    { tenant: "acme", nowMs: NOW, maxFutureMs: 0 },
  );
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.reading;
}

describe("envelope", () => {
  test("round-trips readings with and without location and attributes", () => {
    const rs = [reading("d1", 1, { location: { lat: 1.5, lon: -2.25 }, attributes: { fw: "1" } }), reading("d1", 2)];
    const back = decodeEnvelope(encodeEnvelope(rs, NOW));
    expect(back.readings).toEqual(rs);
    expect(back.receivedAt).toBe(NOW);
    expect(back.tenant).toBe("acme");
  });

  test.each([
    ["not json", "{"],
    ["wrong version", JSON.stringify({ v: 2, t: "a", d: "d", rx: 1, r: [{ id: "x", ts: 1 }] })],
    ["no readings", JSON.stringify({ v: 1, t: "a", d: "d", rx: 1, r: [] })],
    ["bad id", JSON.stringify({ v: 1, t: "a", d: "d", rx: 1, r: [{ id: "x", ts: 1 }] })],
    [
      "string metric",
      JSON.stringify({
        v: 1,
        t: "a",
        d: "d",
        rx: 1,
        r: [{ id: "118b9bbb-4ebb-5c49-9998-7290b5374396", ts: 1, m: { a: "1" } }],
      }),
    ],
  ])("refuses %s", (_, body) => {
    expect(() => decodeEnvelope(body)).toThrow(EnvelopeError);
  });
});

describe("planMessages", () => {
  const opts = { maxRecords: 3, maxBytes: 1 << 20, receivedAt: NOW };

  test("groups per device, orders by time, cuts at maxRecords, and is deterministic", () => {
    const items = [reading("a", 5), reading("b", 1), reading("a", 1), reading("a", 3), reading("a", 2)].map(
      (reading, index) => ({ index, reading }),
    );
    const plan = planMessages(items, opts);
    expect(plan.messages.map((m) => m.indexes)).toEqual([[2, 4, 3], [0], [1]]);
    expect(new Set(plan.messages.map((m) => m.subject)).size).toBe(2);
    expect(planMessages(items, opts)).toEqual(plan);
    const first = decodeEnvelope(plan.messages[0]!.body).readings.map((r) => r.ts);
    expect(first).toEqual([...first].sort((x, y) => x - y));
  });

  test("a single-reading message carries the event id as Nats-Msg-Id", () => {
    const r = reading("a", 1);
    expect(planMessages([{ index: 0, reading: r }], opts).messages[0]!.msgId).toBe(r.eventId);
  });

  test("repeats inside one request are duplicates and are not published twice", () => {
    const r = reading("a", 1);
    const plan = planMessages(
      [
        { index: 0, reading: r },
        { index: 1, reading: { ...r, attributes: { x: 1 } } },
        { index: 2, reading: r },
      ],
      opts,
    );
    expect(plan.duplicates).toEqual([1, 2]);
    expect(plan.messages.flatMap((m) => m.indexes)).toEqual([0]);
  });

  test("cuts messages by size", () => {
    const items = Array.from({ length: 10 }, (_, i) => ({ index: i, reading: reading("a", i) }));
    const plan = planMessages(items, { ...opts, maxRecords: 100, maxBytes: 400 });
    expect(plan.messages.length).toBeGreaterThan(2);
    expect(plan.messages.flatMap((m) => m.indexes).sort((x, y) => x - y)).toEqual(items.map((i) => i.index));
  });
});

describe("Batch", () => {
  test("is due when full or when its oldest item is old enough", () => {
    const b = new Batch<string>(3, 100);
    expect(b.isDue(0)).toBe(false);
    b.add("x", 2, 1000);
    expect(b.isDue(1050)).toBe(false);
    expect(b.msUntilDue(1050)).toBe(50);
    expect(b.isDue(1100)).toBe(true);
    b.add("y", 1, 1100);
    expect(b.isFull()).toBe(true);
    expect(b.take()).toEqual(["x", "y"]);
    expect(b.size).toBe(0);
    expect(b.isDue(5000)).toBe(false);
  });

  test("is full at maxItems items even when they carry fewer readings than maxRecords", () => {
    const b = new Batch<string>(1000, 100, 2);
    b.add("a", 1, 0);
    expect(b.isFull()).toBe(false);
    b.add("b", 1, 0);
    expect(b.isFull()).toBe(true);
    expect(b.isDue(0)).toBe(true);
    expect(b.take()).toEqual(["a", "b"]);
    expect(b.isFull()).toBe(false);
  });
});
