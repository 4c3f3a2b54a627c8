/**
 * Late data from buffered uploads (decision 0460), end to end against real nats-server and
 * PostgreSQL: the scenario in helpers/late-data.ts through the JSON endpoint, with the server's
 * default lateness bound (10m; the test helper's default is none). The ingest clock is the test's, so "three hours later" costs nothing.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { apiClient } from "../helpers/api.ts";
import { bufferedUploadScenario, type SendPoints } from "../helpers/late-data.ts";
import { freshDatabase, startNats } from "../helpers/services.ts";
import { startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;
const clock = { now: Date.now() };

beforeAll(async () => {
  nats = await startNats();
  const databaseUrl = await freshDatabase("late_data");
  // The no_data timer is out of the way: the scenario runs the sweep at the times it means.
  server = await startTestServer(
    {
      NATS_URL: nats.url,
      DATABASE_URL: databaseUrl,
      TELEMETRY_NODATA_INTERVAL: "1h",
      TELEMETRY_ALERT_MAX_LATENESS: "10m",
    },
    { clock: () => clock.now },
  );
  sql = createSql(databaseUrl, { max: 2, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const sendJson: SendPoints = async (deviceId, metric, points) => {
  await apiClient(server).ingest(
    points.map((p) => ({ device_id: deviceId, ts: new Date(p.ts).toISOString(), metrics: { [metric]: p.value } })),
  );
};

test("a buffered upload over JSON: stored, but no alert fires, flaps or resolves from its old points; no_data does not flap", async () => {
  await bufferedUploadScenario({ server, sql, clock }, sendJson);
}, 60_000);

// OsmAnd carries one position per request: a tracker uploading its buffer sends them one by one, in order.
const sendOsmAnd: SendPoints = async (deviceId, metric, points) => {
  for (const p of points) {
    const q = new URLSearchParams({
      id: deviceId,
      lat: "52.5",
      lon: "13.4",
      timestamp: String(Math.round(p.ts)),
      [metric]: String(p.value),
    });
    const res = await fetch(`${server.url}/osmand/${TEST_KEY}?${q}`);
    expect(`${res.status} ${await res.text()}`).toBe("200 ");
  }
};

test("the same buffered upload from an OsmAnd tracker (one request per point): the same outcome", async () => {
  await bufferedUploadScenario({ server, sql, clock, device: "buffered-osmand" }, sendOsmAnd);
}, 90_000);

test("a rule's own max_lateness_seconds is stored, returned and validated", async () => {
  const api = apiClient(server);
  const rule = await api.createRule({
    name: "late ok",
    metric: "temp",
    max_lateness_seconds: 86_400,
    condition: { type: "above_threshold", threshold: 1 },
  });
  expect((await api.get(`/api/v1/rules/${rule.id}`)).body.max_lateness_seconds).toBe(86_400);
  expect((await api.patch(`/api/v1/rules/${rule.id}`, { max_lateness_seconds: 0 })).body.max_lateness_seconds).toBe(0);
  const bad = await api.post("/api/v1/rules", {
    name: "bad",
    metric: "temp",
    max_lateness_seconds: -5,
    condition: { type: "above_threshold", threshold: 1 },
  });
  expect(bad.status).toBe(422);
  expect(JSON.stringify(bad.body)).toContain("max_lateness_seconds");
});
