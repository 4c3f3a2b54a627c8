import { expect, test } from "bun:test";
import type { Envelope } from "../../src/core/envelope.ts";
import { parsePubAck, PublishError } from "../../src/nats/publisher.ts";
import { copyBinary } from "../../src/writer/copy-binary.ts";
import { batchRows, rollupsOf } from "../../src/writer/rows.ts";

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

/** Reads PostgreSQL's binary COPY format back: per tuple, each field's bytes (null for NULL). */
function readCopyBinary(buf: Buffer): Array<Array<Buffer | null>> {
  expect(buf.subarray(0, 11).toString("latin1")).toBe("PGCOPY\n\xff\r\n\0");
  let at = 19;
  const tuples: Array<Array<Buffer | null>> = [];
  for (;;) {
    const fields = buf.readInt16BE(at);
    at += 2;
    if (fields === -1) break;
    const tuple: Array<Buffer | null> = [];
    for (let f = 0; f < fields; f++) {
      const len = buf.readInt32BE(at);
      at += 4;
      tuple.push(len < 0 ? null : buf.subarray(at, (at += len)));
    }
    tuples.push(tuple);
  }
  expect(at).toBe(buf.length);
  return tuples;
}

test("copyBinary: typed fields, NULLs, jsonb version byte, and a buffer that grows past its first guess", () => {
  const long = "ü".repeat(1_000);
  const ids = Array.from({ length: 50 }, (_, i) => `0190a5b2-7c3d-7e4f-8a9b-${i.toString(16).padStart(12, "0")}`);
  const rows = batchRows([
    env(
      "gerät",
      ids.map((id, i) => ({ id, ts: T0 - 86_400_000 * 365 * 40 + i, m: { x: i }, a: { long } })),
    ),
  ]);
  rows[0]!.lat = -33.5;
  rows[0]!.lon = 151.25;
  const tuples = readCopyBinary(copyBinary(rows));
  expect(tuples).toHaveLength(50);
  const [t0, t1] = tuples;
  expect(t0!.map((f) => f?.length ?? null)).toEqual([1, 6, 8, 16, 8, 8, 8, 2 * 1_000 + 11 + 1, 8]);
  expect(t0![0]!.toString()).toBe("t");
  expect(t0![1]!.toString()).toBe("gerät");
  const micros = (b: Buffer) => Number(b.readBigInt64BE(0));
  expect(micros(t1![2]!)).toBe((T0 - 86_400_000 * 365 * 40 + 1 - Date.UTC(2000, 0, 1)) * 1000);
  expect(micros(t0![8]!)).toBe((Date.UTC(2026, 0, 1, 0, 5) - Date.UTC(2000, 0, 1)) * 1000);
  expect(t0![3]!.toString("hex")).toBe(ids[0]!.replaceAll("-", ""));
  expect([t0![4]!.readDoubleBE(0), t0![5]!.readDoubleBE(0)]).toEqual([-33.5, 151.25]);
  expect([t1![4], t1![5]]).toEqual([null, null]);
  expect(t1![6]![0]).toBe(1);
  expect(t1![6]!.subarray(1).toString()).toBe('{"x":1}');
  expect(JSON.parse(t1![7]!.subarray(1).toString())).toEqual({ long });
});

test("copyBinary refuses an event id that is not a uuid", () => {
  const rows = batchRows([env("d", [{ id: "not-a-uuid", ts: T0 }])]);
  expect(() => copyBinary(rows)).toThrow("not a uuid");
});
