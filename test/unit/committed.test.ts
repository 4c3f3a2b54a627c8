import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  committedEvents,
  committedMessageId,
  decodeCommitted,
  encodeCommitted,
  splitCommitted,
  summarizeCommitted,
} from "../../src/core/committed.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import type { Reading } from "../../src/core/record.ts";

const reading = (
  deviceId: string,
  ts: number,
  metrics: Record<string, number> | null,
  pos?: [number, number],
): Reading => ({
  eventId: `${deviceId}-${ts}`,
  tenant: "acme",
  deviceId,
  ts,
  lat: pos?.[0] ?? null,
  lon: pos?.[1] ?? null,
  metrics,
  attributes: null,
});
const envelope = (readings: Reading[], tenant = "acme"): Envelope => ({
  tenant,
  deviceId: readings[0]!.deviceId,
  receivedAt: 0,
  readings: readings.map((r) => ({ ...r, tenant })),
});
const points = (b: { series: Array<{ deviceId: string; metric: string; ts: number; value: number }> }) =>
  b.series.map((s) => `${s.deviceId}/${s.metric}@${s.ts}=${s.value}`);

describe("summarizeCommitted", () => {
  test("keeps the latest value of each series, plus its highest and lowest when those are other readings, in time order", () => {
    const temps = [20, 21, 150, 22, -40, 23];
    const [b] = summarizeCommitted([envelope(temps.map((t, i) => reading("d1", 1000 + i, { temp: t })))]);
    expect(points(b!)).toEqual(["d1/temp@1002=150", "d1/temp@1004=-40", "d1/temp@1005=23"]);
  });

  test("a series whose latest reading is also its extreme is one point; a constant series is one point", () => {
    const [b] = summarizeCommitted([
      envelope([reading("d1", 1, { temp: 1 }), reading("d1", 2, { temp: 5 }), reading("d1", 3, { temp: 9 })]),
      envelope([reading("d2", 1, { temp: 7 }), reading("d2", 2, { temp: 7 })]),
    ]);
    expect(points(b!)).toEqual(["d1/temp@1=1", "d1/temp@3=9", "d2/temp@2=7"]);
  });

  test("series are per device and metric, summaries per tenant; positions in time order; each device's last time", () => {
    const batches = summarizeCommitted([
      envelope([reading("d1", 5, { a: 1, b: 2 }, [1, 2]), reading("d1", 3, { a: 3 }, [3, 4])]),
      envelope([reading("x", 9, { a: 1 })], "beta"),
    ]);
    expect(batches.map((b) => b.tenant)).toEqual(["acme", "beta"]);
    const acme = batches[0]!;
    expect(points(acme).sort()).toEqual(["d1/a@3=3", "d1/a@5=1", "d1/b@5=2"]);
    expect(acme.positions.map((p) => p.ts)).toEqual([3, 5]);
    expect(acme.devices).toEqual([{ deviceId: "d1", lastTs: 5, receivedAt: 0 }]);
  });

  test("readings at the same time: the extreme and the latest in batch order are both kept, the latest last", () => {
    const [b] = summarizeCommitted([
      envelope([reading("d1", 7, { temp: 99 }), { ...reading("d1", 7, { temp: 10 }), eventId: "second" }]),
    ]);
    expect(b!.series.at(-1)!.eventId).toBe("second");
    expect(points(b!)).toEqual(["d1/temp@7=99", "d1/temp@7=10"]);
  });

  test("encodes and decodes losslessly; the message id depends only on the content", () => {
    const [b] = summarizeCommitted([
      envelope([
        reading("d1", 1, { temp: 1 }, [52.5, 13.4]),
        reading("d1", 2, { temp: 90 }),
        reading("d1", 3, { temp: 2 }),
      ]),
    ]);
    expect(decodeCommitted(encodeCommitted(b!))).toEqual(b!);
    expect(committedMessageId(decodeCommitted(encodeCommitted(b!)))).toBe(committedMessageId(b!));
    const [other] = summarizeCommitted([envelope([reading("d1", 1, { temp: 1 })])]);
    expect(committedMessageId(other!)).not.toBe(committedMessageId(b!));
  });
});

describe("series order and message ids", () => {
  test("series come in the order each (device, metric) first appears, across interleaved envelopes", () => {
    const [b] = summarizeCommitted([
      envelope([reading("a", 1, { x: 1 })]),
      envelope([reading("b", 1, { x: 2 })]),
      envelope([reading("a", 2, { y: 3, x: 4 })]),
    ]);
    expect(points(b!)).toEqual(["a/x@1=1", "a/x@2=4", "b/x@1=2", "a/y@2=3"]);
  });

  test("a message id is SHA-256 of the tenant, then |event:metric per point, |event per position, |d:device:last per device", () => {
    const [b] = summarizeCommitted([envelope([reading("d1", 1, { t: 5 }, [1, 2]), reading("d1", 2, { t: 1 })])]);
    const text = `acme|d1-1:t|d1-2:t|d1-1|d:d1:${b!.devices[0]!.lastTs}`;
    expect(committedMessageId(b!)).toBe(createHash("sha256").update(text).digest("hex").slice(0, 32));
  });

  test("committedEvents carries each part's encoding and id, whole or cut", () => {
    const metrics = Object.fromEntries(Array.from({ length: 50 }, (_, k) => [`m${k}`, k]));
    const [big] = summarizeCommitted(
      Array.from({ length: 40 }, (_, d) => envelope([reading(`dev-${d}`, 1, metrics, [1, 2])])),
    );
    for (const limit of [1 << 20, 16 * 1024]) {
      const events = committedEvents(big!, limit);
      expect(events.map((e) => e.batch)).toEqual(splitCommitted(big!, limit));
      for (const e of events) {
        expect(e.body).toBe(encodeCommitted(e.batch));
        expect(e.msgId).toBe(committedMessageId(e.batch));
      }
    }
    expect(committedEvents(big!, 16 * 1024).length).toBeGreaterThan(1);
  });
});

describe("splitCommitted", () => {
  test("a summary over the size limit is cut by device into parts under it that together hold exactly the original", () => {
    const metrics = Object.fromEntries(Array.from({ length: 100 }, (_, k) => [`m${k}`, k]));
    const envelopes = Array.from({ length: 400 }, (_, d) =>
      envelope([reading(`dev-${d}`, 1, metrics, [1, 2]), reading(`dev-${d}`, 2, { ...metrics, m0: 99 })]),
    );
    const [whole] = summarizeCommitted(envelopes);
    const size = Buffer.byteLength(encodeCommitted(whole!));
    expect(size).toBeGreaterThan(1024 * 1024); // over nats-server's default max_payload
    const parts = splitCommitted(whole!, 256 * 1024);
    expect(parts.length).toBeGreaterThan(4);
    for (const p of parts) expect(Buffer.byteLength(encodeCommitted(p))).toBeLessThanOrEqual(256 * 1024);
    const devicesOf = (p: typeof whole) => new Set(p!.series.map((s) => s.deviceId));
    for (const [i, p] of parts.entries())
      for (const q of parts.slice(i + 1)) expect([...devicesOf(p)].some((d) => devicesOf(q).has(d))).toBe(false); // a device is in one part
    const all = (f: (p: typeof whole) => unknown[]) => parts.flatMap((p) => f(p)).length;
    expect(all((p) => p!.series)).toBe(whole!.series.length);
    expect(all((p) => p!.positions)).toBe(whole!.positions.length);
    expect(all((p) => p!.devices)).toBe(whole!.devices.length);
    expect(new Set(parts.map(committedMessageId)).size).toBe(parts.length);
    expect(splitCommitted(whole!, 256 * 1024).map(committedMessageId)).toEqual(parts.map(committedMessageId)); // deterministic
  });

  test("a summary under the limit is left whole", () => {
    const [b] = summarizeCommitted([envelope([reading("d1", 1, { temp: 1 })])]);
    expect(splitCommitted(b!, 1024)).toEqual([b!]);
  });
});

describe("arrival times (decision 0460)", () => {
  test("each point and device carries its message's receive time, the device the newest one", () => {
    const [b] = summarizeCommitted([
      { ...envelope([reading("d1", 10, { temp: 1 }, [1, 2])]), receivedAt: 5_000 },
      { ...envelope([reading("d1", 5, { temp: 2 })]), receivedAt: 9_000 },
    ]);
    expect(b!.series.map((s) => [s.ts, s.receivedAt])).toEqual([
      [5, 9_000],
      [10, 5_000],
    ]);
    expect(b!.positions.map((p) => p.receivedAt)).toEqual([5_000]);
    expect(b!.devices).toEqual([{ deviceId: "d1", lastTs: 10, receivedAt: 9_000 }]);
    expect(decodeCommitted(encodeCommitted(b!))).toEqual(b!);
  });

  test("an event written before arrival times existed decodes with the reading time as arrival", () => {
    const old = JSON.stringify({
      v: 1,
      t: "acme",
      s: [["d1", "temp", 7, 1, "e"]],
      p: [["d1", 7, 1, 2, "e"]],
      d: [["d1", 7]],
    });
    const b = decodeCommitted(old);
    expect([b.series[0]!.receivedAt, b.positions[0]!.receivedAt, b.devices[0]!.receivedAt]).toEqual([7, 7, 7]);
  });
});
