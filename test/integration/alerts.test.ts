/**
 * Alerts end to end: readings over HTTP -> writer -> committed-batch events -> evaluator ->
 * alerts in PostgreSQL, visible through the API, against real nats-server and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createSql, type Sql } from "../../src/db/client.ts";
import { isEvaluatorConsumer } from "../../src/nats/topology.ts";
import { apiClient } from "../helpers/api.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { OTHER_KEY, startTestServer, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let databaseUrl: string;
let server: TestServer;
let sql: Sql;
const env = () => ({
  NATS_URL: nats.url,
  DATABASE_URL: databaseUrl,
  TELEMETRY_NODATA_INTERVAL: "300ms",
  TELEMETRY_DELIVERY_SCHEDULE: "0,100ms,200ms",
});
/** Ingest's receive clock runs this many ms behind the real one (no_data is judged on arrival). */
let clockLagMs = 0;

beforeAll(async () => {
  nats = await startNats();
  databaseUrl = await freshDatabase("alerts");
  server = await startTestServer(env(), { clock: () => Date.now() - clockLagMs });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const api = () => apiClient(server);
const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);
const minute = 60_000;

/** Posts readings one request at a time and waits until the evaluator has seen each. */
async function feed(
  records: Array<{
    device_id: string;
    ts: number;
    metrics?: Record<string, number>;
    location?: { lat: number; lon: number };
  }>,
) {
  for (const r of records) {
    const before = server.evaluator!.stats.batches;
    await api().ingest([r]);
    await check(() => server.evaluator!.stats.batches > before, { what: "the evaluator to see the reading" });
  }
}

describe("threshold rules", () => {
  test("fire above the threshold and not below; the alert is readable through the API", async () => {
    const rule = await api().createRule({
      name: "hot",
      metric: "temp",
      severity: "critical",
      condition: { type: "above_threshold", threshold: 30 },
    });
    await feed([
      { device_id: "t1", ts: T0, metrics: { temp: 25 } },
      { device_id: "t1", ts: T0 + minute, metrics: { temp: 29.9 } },
    ]);
    expect(await api().alerts(`rule=${rule.id}`)).toEqual([]);
    await feed([{ device_id: "t1", ts: T0 + 2 * minute, metrics: { temp: 31.5 } }]);
    const [alert] = await api().alerts(`rule=${rule.id}`);
    expect(alert).toMatchObject({
      device_id: "t1",
      metric: "temp",
      severity: "critical",
      status: "open",
      value: 31.5,
      kind: "above_threshold",
    });
    expect(alert.triggered_at).toBe(new Date(T0 + 2 * minute).toISOString());
    expect((await api().get(`/api/v1/alerts/${alert.id}`)).body.id).toBe(alert.id);
  });

  test("a stuck sensor for 30 minutes with a 15-minute cooldown gives exactly 2 alerts, across an evaluator restart", async () => {
    const rule = await api().createRule({
      name: "stuck",
      metric: "pressure",
      condition: { type: "above_threshold", threshold: 100 },
      cooldown_seconds: 900,
    });
    const readings = Array.from({ length: 30 }, (_, i) => ({
      device_id: "stuck-1",
      ts: T0 + i * minute,
      metrics: { pressure: 150 },
    }));
    await feed(readings.slice(0, 12));
    await server[Symbol.asyncDispose]();
    server = await startTestServer(env(), { clock: () => Date.now() - clockLagMs });
    await feed(readings.slice(12));
    const alerts = await api().alerts(`rule=${rule.id}`);
    expect(alerts.map((a) => a.triggered_at).sort()).toEqual([
      new Date(T0).toISOString(),
      new Date(T0 + 15 * minute).toISOString(),
    ]);
  });

  test("hysteresis: a value hovering around the threshold gives one alert and resolves below the clear level", async () => {
    const rule = await api().createRule({
      name: "hover",
      metric: "level",
      condition: { type: "above_threshold", threshold: 50, clear: 40 },
      cooldown_seconds: 3600,
    });
    const values = [49, 51, 49.5, 50.5, 48, 52, 45, 51, 39];
    await feed(values.map((v, i) => ({ device_id: "hover-1", ts: T0 + i * minute, metrics: { level: v } })));
    const alerts = await api().alerts(`rule=${rule.id}`);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ status: "resolved", resolution: "auto" });
  });
});

describe("deviation from the mean", () => {
  test("cold start (< 5 one-minute buckets) never alerts; with 5 buckets an outlier does", async () => {
    const rule = await api().createRule({
      name: "dev",
      metric: "vib",
      condition: { type: "deviation_from_mean", k: 3, window_minutes: 30 },
    });
    const normal = (device: string, minutes: number) =>
      Array.from({ length: minutes }, (_, i) => ({
        device_id: device,
        ts: T0 + i * minute,
        metrics: { vib: 10 + (i % 2 ? 0.5 : -0.5) },
      }));
    await feed([...normal("cold", 4), { device_id: "cold", ts: T0 + 4 * minute, metrics: { vib: 100 } }]);
    expect(await api().alerts(`rule=${rule.id}`)).toEqual([]);
    await feed([...normal("warm", 5), { device_id: "warm", ts: T0 + 5 * minute, metrics: { vib: 100 } }]);
    const alerts = await api().alerts(`rule=${rule.id}`);
    expect(alerts.map((a) => a.device_id)).toEqual(["warm"]);
    expect(alerts[0].details.mean).toBeCloseTo((9.5 + 10.5 + 9.5 + 10.5 + 9.5) / 5, 9);
    expect(alerts[0].details.buckets).toBe(5);
  });
});

describe("geofence and deadman", () => {
  test("geofence enter and exit fire in order per device", async () => {
    const rule = await api().createRule({
      name: "depot",
      condition: { type: "geofence", on: "both", circle: { lat: 52.52, lon: 13.405, radius_m: 500 } },
      cooldown_seconds: 0,
    });
    const path = [
      { lat: 52.6, lon: 13.405 },
      { lat: 52.521, lon: 13.405 },
      { lat: 52.5201, lon: 13.4051 },
      { lat: 52.4, lon: 13.405 },
    ];
    // All in one request: the committed batch carries every position, in time order.
    await api().ingest(path.map((location, i) => ({ device_id: "van-1", ts: T0 + i * minute, location })));
    const alerts = await check(
      async () => {
        const a = await api().alerts(`rule=${rule.id}`);
        return a.length === 2 && a;
      },
      { what: "two geofence alerts" },
    );
    expect(alerts.map((a) => [a.triggered_at, a.details.event]).sort()).toEqual([
      [new Date(T0 + minute).toISOString(), "enter"],
      [new Date(T0 + 3 * minute).toISOString(), "exit"],
    ]);
  });

  test("no_data fires once per silence on the timer and resolves when data returns", async () => {
    const rule = await api().createRule({
      name: "silent",
      devices: ["quiet-1"],
      condition: { type: "no_data", minutes: 10 },
    });
    // Received 20 minutes ago: silence is measured from arrival, not from the reading's time.
    clockLagMs = 20 * minute;
    await api().ingest([{ device_id: "quiet-1", ts: Date.now() - 20 * minute, metrics: { v: 1 } }]);
    clockLagMs = 0;
    const [alert] = await check(
      async () => {
        const a = await api().alerts(`rule=${rule.id}`);
        return a.length > 0 && a;
      },
      { what: "a no_data alert" },
    );
    expect(alert.status).toBe("open");
    await server.evaluator!.sweep();
    expect(await api().alerts(`rule=${rule.id}`)).toHaveLength(1);
    await api().ingest([{ device_id: "quiet-1", ts: Date.now(), metrics: { v: 2 } }]);
    await check(async () => (await api().alerts(`rule=${rule.id}`))[0]?.status === "resolved", {
      what: "auto-resolve",
    });
  });
});

describe("lifecycle, events and isolation", () => {
  test("acknowledge then resolve; a resolved alert cannot be acknowledged; events reach alerts.v1.{tenant}", async () => {
    const [alert] = await api().alerts("status=open&device=t1");
    expect((await api().post(`/api/v1/alerts/${alert.id}/acknowledge`)).body.status).toBe("acknowledged");
    expect((await api().post(`/api/v1/alerts/${alert.id}/resolve`)).body).toMatchObject({
      status: "resolved",
      resolution: "manual",
    });
    expect((await api().post(`/api/v1/alerts/${alert.id}/acknowledge`)).status).toBe(409);
    // Each change is delivered once to NATS, in whatever order the notifier's workers finish.
    await check(
      async () =>
        (
          await sql`SELECT count(*)::int AS n FROM outbox WHERE alert_id = ${alert.id} AND kind = 'nats' AND status = 'delivered'`
        )[0]!.n === 3,
      {
        what: "three alert events delivered",
      },
    );
    const jsm = await jetstreamManager(server.broker.nc);
    const { first_seq, last_seq } = (await jsm.streams.info("ALERTS")).state;
    const events: string[] = [];
    for (let seq = first_seq; seq <= last_seq; seq++) {
      const payload = JSON.parse((await jsm.streams.getMessage("ALERTS", { seq }))!.string());
      if (payload.alert.id === alert.id) events.push(payload.event);
    }
    expect(events.sort()).toEqual(["alert.acknowledged", "alert.opened", "alert.resolved"]);
  });

  test("cursor pagination walks every alert once", async () => {
    const all = await api().alerts("limit=500");
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = (await api().get(`/api/v1/alerts?limit=2${cursor ? `&cursor=${cursor}` : ""}`)).body;
      seen.push(...page.alerts.map((a: { id: string }) => a.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.map((a) => a.id));
  });

  test("another tenant can never read or change rules, alerts, devices or readings (404)", async () => {
    const other = apiClient(server, OTHER_KEY);
    const [alert] = await api().alerts("limit=1");
    const [rule] = (await api().get("/api/v1/rules")).body.rules;
    for (const path of [
      `/api/v1/alerts/${alert.id}`,
      `/api/v1/rules/${rule.id}`,
      "/api/v1/devices/t1",
      "/api/v1/devices/t1/metrics/temp",
    ]) {
      const r = await other.get(path);
      if (path.endsWith("/metrics/temp")) expect(r.body.buckets).toEqual([]);
      else expect(r.status).toBe(404);
    }
    expect((await other.get("/api/v1/devices/t1/readings")).body.readings).toEqual([]);
    expect((await other.post(`/api/v1/alerts/${alert.id}/resolve`)).status).toBe(404);
    expect((await other.patch(`/api/v1/rules/${rule.id}`, { enabled: false })).status).toBe(404);
    expect((await other.del(`/api/v1/rules/${rule.id}`)).status).toBe(404);
    expect((await other.get("/api/v1/alerts")).body.alerts).toEqual([]);
    expect((await other.get("/api/v1/rules")).body.rules).toEqual([]);
  });

  test("replaying every committed batch from the start creates no duplicate alert", async () => {
    const before = (await sql`SELECT id FROM alerts ORDER BY id`).map((r) => r.id);
    const outboxBefore = Number((await sql`SELECT count(*) AS n FROM outbox`)[0]!.n);
    await server[Symbol.asyncDispose]();
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      // Every evaluator consumer (one per evaluation partition) and the fences' positions, so
      // every event is evaluated again and only the alert ids keep alerts from repeating.
      for (const c of await jsm.consumers.list("TELEMETRY_COMMITTED").next())
        if (isEvaluatorConsumer(c.name)) await jsm.consumers.delete("TELEMETRY_COMMITTED", c.name);
      await sql`UPDATE evaluator_partitions SET last_seq = 0`;
      server = await startTestServer(env(), { clock: () => Date.now() - clockLagMs });
      const total = (await jsm.streams.info("TELEMETRY_COMMITTED")).state.messages;
      await check(() => server.evaluator!.stats.batches >= total, {
        what: `the evaluator to re-read ${total} events`,
        timeoutMs: 30_000,
      });
    } finally {
      await nc.close();
    }
    expect((await sql`SELECT id FROM alerts ORDER BY id`).map((r) => r.id)).toEqual(before);
    expect(Number((await sql`SELECT count(*) AS n FROM outbox`)[0]!.n)).toBe(outboxBefore);
  });
});
