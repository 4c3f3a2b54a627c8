import { expect, test } from "bun:test";
import type { Envelope } from "../../src/core/envelope.ts";
import { parsePubAck, PublishError } from "../../src/nats/publisher.ts";
import { batchRows, copyText, rollupsOf } from "../../src/writer/rows.ts";

const env = (
  deviceId: string,
  readings: Array<{
    id: string;
    ts: number;
    m?: Record<string, number>;
    a?: Record<string, string | number | boolean | null>;
  }>,
): Envelope => ({
  tenant: "t",
  deviceId,
  receivedAt: Date.UTC(2026, 0, 1, 0, 5),
  readings: readings.map((r) => ({
    eventId: r.id,
    tenant: "t",
    deviceId,
    ts: r.ts,
    lat: null,
    lon: null,
    metrics: r.m ?? null,
    attributes: r.a ?? null,
  })),
});
const T0 = Date.UTC(2026, 0, 1);

test("batchRows keeps each event once, in order", () => {
  const rows = batchRows([
    env("d1", [
      { id: "a", ts: T0 },
      { id: "b", ts: T0 + 1 },
    ]),
    env("d1", [{ id: "a", ts: T0 }]),
  ]);
  expect(rows.map((r) => r.eventId)).toEqual(["a", "b"]);
});

test("copyText escapes backslashes in JSON and writes NULLs as \\N", () => {
  const [row] = batchRows([env("d1", [{ id: "a", ts: T0, a: { path: "C:\\tmp\tx\ny" } }])]);
  const line = copyText([row!]);
  expect(line.endsWith("\n")).toBe(true);
  const cols = line.slice(0, -1).split("\t");
  expect(cols).toHaveLength(9);
  expect(cols[4]).toBe("\\N");
  expect(cols[6]).toBe("\\N");
  // COPY turns \\ back into \, giving the JSON text JSON.stringify wrote
  expect(cols[7]!.replaceAll("\\\\", "\\")).toBe(JSON.stringify({ path: "C:\\tmp\tx\ny" }));
  expect(line.split("\n")).toHaveLength(2);
});

test("rollupsOf: count, sum, sum of squares, min, max per device, metric and minute, sorted", () => {
  const g = rollupsOf(
    batchRows([
      env("d2", [
        { id: "a", ts: T0 + 59_999, m: { x: 2 } },
        { id: "b", ts: T0 + 60_000, m: { x: 4 } },
      ]),
      env("d1", [
        { id: "c", ts: T0 + 1, m: { x: 1, y: -3 } },
        { id: "d", ts: T0 + 2, m: { x: 5 } },
      ]),
    ]),
  );
  expect(g.map((r) => [r.deviceId, r.metric, r.bucket - T0, r.count, r.sum, r.sumSq, r.min, r.max])).toEqual([
    ["d1", "x", 0, 2, 6, 26, 1, 5],
    ["d1", "y", 0, 1, -3, 9, -3, -3],
    ["d2", "x", 0, 1, 2, 4, 2, 2],
    ["d2", "x", 60_000, 1, 4, 16, 4, 4],
  ]);
});

test("parsePubAck reads acks, duplicates and API errors", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  expect(parsePubAck(enc('{"stream":"S","seq":7}'))).toEqual({ stream: "S", seq: 7, duplicate: false });
  expect(parsePubAck(enc('{"stream":"S","seq":7,"duplicate":true}'))).toEqual({ stream: "S", seq: 7, duplicate: true });
  const err = parsePubAck(enc('{"error":{"code":503,"err_code":10039,"description":"jetstream not enabled"}}'));
  expect(err).toBeInstanceOf(PublishError);
  expect((err as PublishError).transient).toBe(true);
  const wrong = parsePubAck(
    enc('{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}'),
  ) as PublishError;
  expect([wrong.code, wrong.transient]).toEqual([400, false]);
  expect(parsePubAck(enc("garbage"))).toBeInstanceOf(PublishError);
});
