/**
 * GET /api/v1/stream against real nats-server and PostgreSQL: readings once committed, filters,
 * tenant isolation, exact resume with Last-Event-ID, alert changes, the subscriber bounds.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as tcpConnect } from "node:net";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createSql, type Sql } from "../../src/db/client.ts";
import { apiClient } from "../helpers/api.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { OTHER_KEY, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";
import { openSse, type SseClient } from "../helpers/sse.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let databaseUrl: string;
let server: TestServer;
let sql: Sql;
const open: SseClient[] = [];
const env = () => ({
  NATS_URL: nats.url,
  DATABASE_URL: databaseUrl,
  TELEMETRY_LIVE_MAX_PER_TENANT: "4",
  TELEMETRY_LIVE_MAX_SUBSCRIBERS: "6",
  TELEMETRY_LIVE_HEARTBEAT: "300ms",
  TELEMETRY_DELIVERY_SCHEDULE: "0,100ms,200ms",
  TELEMETRY_DEVICE_BURST: "100000",
  TELEMETRY_DEVICE_RATE: "100000",
});

beforeAll(async () => {
  nats = await startNats();
  databaseUrl = await freshDatabase("stream");
  server = await startTestServer(env());
  sql = createSql(databaseUrl, { max: 2, name: "test" });
}, 60_000);

afterAll(async () => {
  for (const c of open) c.close();
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);
let n = 0;
/** A record with a fresh timestamp (distinct event ids). */
const rec = (device: string, metrics: Record<string, number>, extra: Record<string, unknown> = {}) => ({
  device_id: device,
  ts: T0 + ++n * 1000,
  metrics,
  ...extra,
});

async function stream(query = "", opts: { key?: string; lastEventId?: string } = {}) {
  const c = await openSse(server, query, opts);
  open.push(c);
  if (c.status === 200) await check(() => c.of("open").length > 0, { what: "the open event" });
  return c;
}

/** Closes a client and waits until the server has let go of it. */
async function closeAll(...clients: SseClient[]) {
  for (const c of clients) c.close();
  open.length = 0;
  await check(() => server.live!.size === 0, { what: "the server to drop the closed streams" });
}

const readings = (c: SseClient) => c.of("reading").map((e) => e.data);

describe("readings", () => {
  test("arrive once committed, with the documented shape; filters; another tenant's never", async () => {
    const all = await stream();
    const filtered = await stream("device=d1,d3&metric=temp");
    const repeated = await stream("device=d2&device=d3");
    const beta = await stream("", { key: OTHER_KEY });
    const a = rec("d1", { temp: 21.5, hum: 40 }, { location: { lat: 52.52, lon: 13.405 }, attributes: { fw: "1.2" } });
    const b = rec("d2", { temp: 19 });
    const c = rec("d1", { hum: 41 });
    await apiClient(server).ingest([a, b, c]);
    await apiClient(server, OTHER_KEY).ingest([rec("d1", { temp: 99 })]);
    await check(() => readings(all).length === 3 && readings(beta).length === 1, { what: "the readings" });
    // Committed when shown: every reading on the stream is in the database already.
    for (const r of readings(all)) {
      const [row] = await sql`SELECT device_id FROM readings WHERE event_id = ${r.event_id}`;
      expect(row?.device_id).toBe(r.device_id);
    }
    const first = readings(all).find((r) => r.device_id === "d1" && r.metrics.temp === 21.5);
    expect(first).toEqual({
      device_id: "d1",
      ts: new Date(a.ts).toISOString(),
      location: { lat: 52.52, lon: 13.405 },
      metrics: { temp: 21.5, hum: 40 },
      attributes: { fw: "1.2" },
      event_id: expect.any(String),
    });
    await check(() => readings(repeated).length === 1, { what: "the repeated-device stream" });
    expect(readings(filtered)).toEqual([{ ...first, metrics: { temp: 21.5 } }]); // c has no temp
    expect(readings(repeated).map((r) => r.device_id)).toEqual(["d2"]);
    expect(readings(beta).map((r) => r.metrics)).toEqual([{ temp: 99 }]);
    const betaIds = new Set(readings(beta).map((r) => r.event_id));
    for (const r of [...readings(all), ...readings(filtered), ...readings(repeated)])
      expect(betaIds.has(r.event_id)).toBe(false);
    for (const e of all.of("reading")) expect(e.id).toMatch(/^\d+(\.\d+)?-\d+$/);
    await check(() => all.comments > 0, { what: "a heartbeat comment" });
    await closeAll(all, filtered, repeated, beta);
  }, 30_000);

  test("not shown before the writer committed them", async () => {
    // A second process with ingest and API but no writer: its readings wait in JetStream.
    await using ingestOnly = await startTestServer({ ...env(), TELEMETRY_ROLES: "ingest,api" });
    await server.writer!.stop(5_000);
    // One reading sent before the stream opens (this process's first: its fan-out starts then), one after.
    await apiClient(ingestOnly).ingest([rec("held", { temp: 1 })]);
    const c = await openSse(ingestOnly, "device=held");
    await check(() => c.of("open").length > 0, { what: "the open event" });
    await apiClient(ingestOnly).ingest([rec("held", { temp: 2 })]);
    await Bun.sleep(1_500); // long enough for several ack-floor polls: nothing may appear
    expect(readings(c)).toEqual([]);
    // A writer starts: both are committed after the stream opened, then shown.
    await using writer = await startTestServer({ ...env(), TELEMETRY_ROLES: "writer" });
    await check(() => readings(c).length === 2, { what: "the readings after the commit" });
    expect(readings(c).map((r) => r.metrics.temp)).toEqual([1, 2]);
    const [row] = await sql`SELECT count(*)::int AS n FROM readings WHERE device_id = 'held'`;
    expect(row!.n).toBe(2);
    c.close();
    void writer;
  }, 60_000);
});

describe("resume", () => {
  test("Last-Event-ID after a disconnect: every reading exactly once, also from inside a message", async () => {
    // The in-process writer was stopped above; a writer-only process does the writing from here.
    await using writer = await startTestServer({ ...env(), TELEMETRY_ROLES: "writer" });
    void writer;
    const c1 = await stream("device=r1");
    // One request of 4 readings of one device travels as one broker message (index in the id).
    const batch1 = [0, 1, 2, 3].map((i) => rec("r1", { v: i }));
    await apiClient(server).ingest(batch1);
    await check(() => readings(c1).length >= 2, { what: "the first readings" });
    const seen = c1.of("reading").slice(0, 2);
    await closeAll(c1);
    const more = [4, 5, 6].map((i) => rec("r1", { v: i }));
    for (const r of more) await apiClient(server).ingest([r]);
    // Resume from the 2nd reading of the first message: the rest of it, then the 3 later messages.
    const c2 = await stream("device=r1", { lastEventId: seen[1]!.id! });
    await check(() => readings(c2).length >= 5, { what: "the resumed readings" });
    await apiClient(server).ingest([rec("r1", { v: 7 })]);
    await check(() => readings(c2).length >= 6, { what: "a live reading after the catch-up" });
    const values = [...seen.map((e) => e.data), ...readings(c2)].map((r) => r.metrics.v);
    expect(values).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Once more from the last id: nothing again.
    const c3 = await stream("device=r1", { lastEventId: c2.lastId()! });
    await apiClient(server).ingest([rec("r1", { v: 8 })]);
    await check(() => readings(c3).length >= 1, { what: "the next reading" });
    expect(readings(c3).map((r) => r.metrics.v)).toEqual([8]);
    await closeAll(c2, c3);
  }, 60_000);

  test("ids are broker positions: a stream cut by a server's shutdown resumes on another process", async () => {
    await using writer = await startTestServer({ ...env(), TELEMETRY_ROLES: "writer" });
    void writer;
    const other = await startTestServer({ ...env(), TELEMETRY_ROLES: "api" });
    let c1: SseClient;
    try {
      c1 = await openSse(other, "device=x1");
      await check(() => c1.of("open").length > 0, { what: "the open event" });
      await apiClient(server).ingest([rec("x1", { v: 1 })]);
      await check(() => readings(c1).length === 1, { what: "the first reading" });
    } finally {
      const stopping = Date.now();
      await other[Symbol.asyncDispose](); // with the stream still open: the shutdown ends it
      expect(Date.now() - stopping).toBeLessThan(10_000);
    }
    await c1.ended;
    await apiClient(server).ingest([rec("x1", { v: 2 })]);
    const c2 = await stream("device=x1", { lastEventId: c1.lastId()! });
    await check(() => readings(c2).length >= 1, { what: "the reading sent while it was away" });
    expect([...readings(c1), ...readings(c2)].map((r) => r.metrics.v)).toEqual([1, 2]);
    await closeAll(c2);
  }, 60_000);

  test("a bad Last-Event-ID or filter is 400, a device key 403; one past the broker's streams gets a reset event", async () => {
    const bad = await openSse(server, "", { lastEventId: "yesterday" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_last_event_id");
    const ahead = await stream("", { lastEventId: "99999999-0" });
    await check(() => ahead.of("reset").length > 0, { what: "the reset event" });
    expect(ahead.of("reset")[0]!.data.reason).toBe("unknown");
    const created = await apiClient(server).post("/api/v1/devices/dk1/keys", { name: "dk1 key" });
    expect(created.status).toBe(201);
    const deviceKey = await openSse(server, "", { key: created.body.key });
    expect(deviceKey.status).toBe(403);
    expect(deviceKey.body.error.code).toBe("key_not_allowed");
    const none = await fetch(`${server.url}/api/v1/stream`);
    expect(none.status).toBe(401);
    const badFilter = await openSse(server, "device=a.b");
    expect(badFilter.status).toBe(400);
    expect(badFilter.body.error.code).toBe("invalid_query");
    await closeAll(ahead);
  }, 30_000);
});

describe("alerts", () => {
  test("fired and resolved alerts are events of their tenant's stream", async () => {
    await using writer = await startTestServer({ ...env(), TELEMETRY_ROLES: "writer" });
    void writer;
    const c = await stream("device=hot1");
    const beta = await stream("", { key: OTHER_KEY });
    const rule = await apiClient(server).createRule({
      name: "hot",
      metric: "temp",
      severity: "critical",
      condition: { type: "above_threshold", threshold: 30 },
    });
    await apiClient(server).ingest([rec("hot1", { temp: 35 })]);
    await check(() => c.of("alert").length >= 1, { what: "the fired alert", timeoutMs: 20_000 });
    const fired = c.of("alert")[0]!.data;
    expect(fired.event).toBe("alert.opened");
    expect(fired.alert).toMatchObject({ device_id: "hot1", rule_id: rule.id, status: "open" });
    const r = await apiClient(server).post(`/api/v1/alerts/${fired.alert.id}/resolve`);
    expect(r.status).toBe(200);
    await check(() => c.of("alert").length >= 2, { what: "the resolved alert" });
    expect(c.of("alert")[1]!.data).toMatchObject({ event: "alert.resolved", alert: { status: "resolved" } });
    expect(beta.of("alert")).toEqual([]);
    await closeAll(c, beta);
  }, 60_000);
});

describe("bounds", () => {
  test("per tenant and per process, with specific errors; hostile connection floods are refused", async () => {
    const acme = await Promise.all([0, 1, 2, 3].map(() => stream()));
    const fifth = await openSse(server, "");
    expect(fifth.status).toBe(429);
    expect(fifth.body.error.code).toBe("too_many_streams");
    const b1 = await stream("", { key: OTHER_KEY });
    const b2 = await stream("", { key: OTHER_KEY });
    const seventh = await openSse(server, "", { key: OTHER_KEY });
    expect(seventh.status).toBe(503);
    expect(seventh.body.error.code).toBe("stream_capacity");
    // A flood: every attempt answered at once with the bound's error, the server keeps serving.
    const flood = await Promise.all(Array.from({ length: 300 }, () => openSse(server, "")));
    expect(flood.every((f) => f.status === 429)).toBe(true);
    expect((await fetch(`${server.url}/health`)).status).toBeLessThan(500);
    await closeAll(...acme, b1, b2);
    const again = await stream();
    expect(again.status).toBe(200);
    await closeAll(again);
  }, 60_000);

  test("a client that stops reading is cut off once its queue is full; the server goes on", async () => {
    await using writer = await startTestServer({ ...env(), TELEMETRY_ROLES: "writer" });
    void writer;
    const sock = tcpConnect(server.port, "127.0.0.1");
    await new Promise((resolve) => sock.once("connect", resolve));
    sock.write(`GET /api/v1/stream?device=slow HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${TEST_KEY}\r\n\r\n`);
    await check(() => server.live!.size === 1, { what: "the stream to open" });
    sock.pause(); // reads nothing more: the socket's buffers fill, then the session's queue
    // ~3 KB per event: 100 metrics and 7 attributes of 250 characters.
    const metrics = Object.fromEntries(Array.from({ length: 100 }, (_, k) => [`m${k}`, k + 0.123456]));
    const attributes = Object.fromEntries(Array.from({ length: 7 }, (_, k) => [`a${k}`, "x".repeat(250)]));
    try {
      // Up to ~30 MB of events: more than the kernel's socket buffers and the 1 MiB queue.
      for (let i = 0; i < 50 && server.live!.size > 0; i++)
        await apiClient(server).ingest(Array.from({ length: 200 }, () => rec("slow", metrics, { attributes })));
      await check(() => server.live!.size === 0, { what: "the slow session to be cut off", timeoutMs: 20_000 });
    } finally {
      sock.destroy();
    }
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  }, 90_000);

  test("a position older than the stream keeps gets a reset event (expired)", async () => {
    const c = await stream("device=old");
    await apiClient(server).ingest([rec("old", { v: 1 })]);
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const before = (await jsm.streams.info("TELEMETRY")).state.last_seq;
      await apiClient(server).ingest([rec("old", { v: 2 })]);
      await check(async () => (await jsm.streams.info("TELEMETRY")).state.last_seq > before, { what: "stored" });
      await jsm.streams.purge("TELEMETRY", { keep: 1 });
      const r = await stream("device=old", { lastEventId: `${before - 1}-0` });
      await check(() => r.of("reset").length > 0, { what: "the reset event" });
      expect(r.of("reset")[0]!.data.reason).toBe("expired");
      await closeAll(c, r);
    } finally {
      await nc.close();
    }
  }, 30_000);
});

describe("the dashboard's client (src/ui/assets/stream.js)", () => {
  test("reads the stream over fetch with the key in a header, resumes after a break without gap or repeat", async () => {
    await using writer = await startTestServer({ ...env(), TELEMETRY_ROLES: "writer" });
    void writer;
    // @ts-expect-error a browser script without types
    const { openStream } = await import("../../src/ui/assets/stream.js");
    const got: any[] = [];
    const statuses: string[] = [];
    const s = openStream({
      baseUrl: server.url,
      key: TEST_KEY,
      device: ["ui1"],
      onReading: (r: any) => got.push(r),
      onStatus: (st: string) => statuses.push(st),
    });
    try {
      await check(() => statuses.includes("open"), { what: "the client to connect" });
      for (const v of [1, 2]) await apiClient(server).ingest([rec("ui1", { v })]);
      await check(() => got.length === 2, { what: "two readings" });
      s.reconnect();
      await apiClient(server).ingest([rec("ui1", { v: 3 })]); // while it is away
      await check(() => statuses.filter((x) => x === "open").length === 2, { what: "the reconnect" });
      await apiClient(server).ingest([rec("ui1", { v: 4 })]);
      await check(() => got.length >= 4, { what: "the readings after the break" });
      expect(got.map((r) => r.metrics.v)).toEqual([1, 2, 3, 4]);
    } finally {
      s.close();
    }
    await closeAll();
  }, 60_000);
});
