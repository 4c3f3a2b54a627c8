/**
 * The buffered-upload scenario (decision 0460), independent of the source that carries the points:
 * a device sends live readings, goes silent (no_data fires, rightly), reconnects three hours later
 * and uploads what it buffered — old points in order, crossing a threshold back and forth — then
 * sends live again. The alerts must not fire, flap or resolve from the old points, no_data must not
 * flap during the upload, and the live point afterwards is evaluated normally.
 *
 * A test calls it with a `send` for its source (JSON today; OsmAnd and others the same way) and a
 * server started with the `clock` it controls (startTestServer(env, { clock: () => clock.now })),
 * so "three hours later" is a receive time, not a wait.
 */
import { expect } from "bun:test";
import type { Sql } from "../../src/db/client.ts";
import { evaluatorBacklog } from "../../src/nats/evaluator-backlog.ts";
import { committedStream, DURABLE } from "../../src/nats/topology.ts";
import { apiClient } from "./api.ts";
import type { TestServer } from "./server.ts";
import { check } from "./services.ts";

export interface Point {
  ts: number;
  value: number;
}
/** Sends one device's points, in order, in one request (or message); resolves once accepted. */
export type SendPoints = (deviceId: string, metric: string, points: Point[]) => Promise<void>;

export interface ScenarioContext {
  server: TestServer;
  sql: Sql;
  /** The ingest clock the server reads (ms). */
  clock: { now: number };
  /** Defaults: device "buffered-1", metric "temp", the default TELEMETRY stream. */
  device?: string;
  metric?: string;
  stream?: string;
}

const MIN = 60_000;

export async function bufferedUploadScenario(ctx: ScenarioContext, send: SendPoints): Promise<void> {
  const { server, sql, clock } = ctx;
  const device = ctx.device ?? "buffered-1";
  const metric = ctx.metric ?? "temp";
  const stream = ctx.stream ?? "TELEMETRY";
  const api = apiClient(server);
  const hot = await api.createRule({
    name: "hot",
    metric,
    devices: [device],
    condition: { type: "above_threshold", threshold: 30, clear: 28 },
  });
  const silent = await api.createRule({
    name: "silent",
    devices: [device],
    condition: { type: "no_data", minutes: 30 },
  });
  const silentMetric = await api.createRule({
    name: "metric silent",
    metric,
    devices: [device],
    condition: { type: "no_data", minutes: 30 },
  });
  let sent = 0;
  const deliver = async (points: Point[]) => {
    await send(device, metric, points);
    sent += points.length;
    await settled(server, sql, stream, device, sent);
  };
  const alerts = async (rule: { id: string }) =>
    (await api.alerts(`rule=${rule.id}`)).map((a) => ({ at: a.triggered_at as string, status: a.status as string }));
  const iso = (ms: number) => new Date(ms).toISOString();

  // Live: readings arrive as they happen; the second is hot and opens an alert.
  const r = clock.now;
  await deliver([{ ts: r - MIN, value: 20 }]);
  await deliver([{ ts: r, value: 35 }]);
  expect(await alerts(hot)).toEqual([{ at: iso(r), status: "open" }]);

  // Silent for half an hour: no_data fires, named by the last arrival.
  await server.evaluator!.sweep(r + 31 * MIN);
  for (const rule of [silent, silentMetric]) expect(await alerts(rule)).toEqual([{ at: iso(r), status: "open" }]);

  // Three hours later the device uploads its buffer: a point every 10 minutes up to 20 minutes
  // ago (all older than the default 10-minute bound), crossing 30 and the clear level 28 every
  // time, in three requests; the no_data sweep runs after each.
  clock.now = r + 180 * MIN;
  const buffered = Array.from({ length: 16 }, (_, i) => ({ ts: r + (i + 1) * 10 * MIN, value: i % 2 ? 36 : 22 }));
  for (let i = 0; i < buffered.length; i += 6) {
    await deliver(buffered.slice(i, i + 6));
    await server.evaluator!.sweep(clock.now + MIN);
  }
  // Nothing fired or resolved from the old points; no_data resolved once (the device is talking
  // again) and did not fire again while the upload ran.
  expect(await alerts(hot)).toEqual([{ at: iso(r), status: "open" }]);
  for (const rule of [silent, silentMetric]) expect(await alerts(rule)).toEqual([{ at: iso(r), status: "resolved" }]);
  expect(await stored(sql, device)).toBe(18);

  // Live again: a cool reading resolves the open alert (clear level), a hot one fires a new one.
  clock.now += MIN;
  await deliver([{ ts: clock.now - 1_000, value: 20 }]);
  expect(await alerts(hot)).toEqual([{ at: iso(r), status: "resolved" }]);
  await deliver([{ ts: clock.now, value: 37 }]);
  expect(await alerts(hot)).toEqual([
    { at: iso(clock.now), status: "open" },
    { at: iso(r), status: "resolved" },
  ]);
  await server.evaluator!.sweep(clock.now + MIN);
  for (const rule of [silent, silentMetric]) expect(await alerts(rule)).toHaveLength(1);
  // Silent again after the last live reading: each fires once more, named by that arrival.
  await server.evaluator!.sweep(clock.now + 31 * MIN);
  for (const rule of [silent, silentMetric])
    expect((await alerts(rule)).map((a) => a.at)).toEqual([iso(clock.now), iso(r)]);
}

async function stored(sql: Sql, device: string): Promise<number> {
  return (await sql`SELECT count(*)::int AS n FROM readings WHERE device_id = ${device}`)[0]!.n;
}

/** Waits until `count` readings of the device are stored and the writer and the evaluator have nothing left. */
async function settled(server: TestServer, sql: Sql, stream: string, device: string, count: number): Promise<void> {
  await check(async () => (await stored(sql, device)) === count, { what: `${count} readings of ${device} stored` });
  const idle = async (name: string, durable: string) => {
    const info = await server.broker.jsm.consumers.info(name, durable);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  };
  await check(() => idle(stream, DURABLE.writer), { what: "the writer to ack everything" });
  await check(
    async () => {
      const b = await evaluatorBacklog(server.broker.jsm, committedStream(stream)); // all partitions
      return b.num_pending === 0 && b.num_ack_pending === 0;
    },
    { what: "the evaluator to see every batch" },
  );
}
