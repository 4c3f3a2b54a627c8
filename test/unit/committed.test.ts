import { describe, expect, test } from "bun:test";
import { committedMessageId, decodeCommitted, encodeCommitted, summarizeCommitted } from "../../src/core/committed.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import type { Reading } from "../../src/core/record.ts";

const reading = (deviceId: string, ts: number, metrics: Record<string, number> | null, pos?: [number, number]): Reading => ({
  eventId: `${deviceId}-${ts}`,
  tenant: "acme",
  deviceId,
  ts,
  lat: pos?.[0] ?? null,
  lon: pos?.[1] ?? null,
  metrics,
  attributes: null,
});
const envelope = (readings: Reading[], tenant = "acme"): Envelope => ({ tenant, deviceId: readings[0]!.deviceId, receivedAt: 0, readings: readings.map((r) => ({ ...r, tenant })) });
const points = (b: { series: Array<{ deviceId: string; metric: string; ts: number; value: number }> }) => b.series.map((s) => `${s.deviceId}/${s.metric}@${s.ts}=${s.value}`);

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
    expect(acme.devices).toEqual([{ deviceId: "d1", lastTs: 5 }]);
  });

  test("readings at the same time: the extreme and the latest in batch order are both kept, the latest last", () => {
    const [b] = summarizeCommitted([envelope([reading("d1", 7, { temp: 99 }), { ...reading("d1", 7, { temp: 10 }), eventId: "second" }])]);
    expect(b!.series.at(-1)!.eventId).toBe("second");
    expect(points(b!)).toEqual(["d1/temp@7=99", "d1/temp@7=10"]);
  });

  test("encodes and decodes losslessly; the message id depends only on the content", () => {
    const [b] = summarizeCommitted([envelope([reading("d1", 1, { temp: 1 }, [52.5, 13.4]), reading("d1", 2, { temp: 90 }), reading("d1", 3, { temp: 2 })])]);
    expect(decodeCommitted(encodeCommitted(b!))).toEqual(b!);
    expect(committedMessageId(decodeCommitted(encodeCommitted(b!)))).toBe(committedMessageId(b!));
    const [other] = summarizeCommitted([envelope([reading("d1", 1, { temp: 1 })])]);
    expect(committedMessageId(other!)).not.toBe(committedMessageId(b!));
  });
});
