/**
 * The track endpoint (src/api/track.ts) asks PostgreSQL once per request (one statement: the
 * device's existence, the count and the points), counted in PostgreSQL's own statement log;
 * as-is and downsampled answers, and 404 for an unknown device, on a real server.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { apiClient } from "../helpers/api.ts";
import { statementLogSettings, statements } from "../helpers/pg-control.ts";
import { check, startNats, startPostgres } from "../helpers/services.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

let pg: Awaited<ReturnType<typeof startPostgres>>;
let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;
const DB = "track";
const T0 = Date.now() - 3_600_000;

beforeAll(async () => {
  pg = await startPostgres({ settings: statementLogSettings });
  await pg.createDatabase(DB);
  nats = await startNats();
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: pg.urlFor(DB),
    TELEMETRY_ROLES: "ingest,writer,api",
  });
  sql = createSql(pg.urlFor(DB), { max: 1, name: "test" });
  const points = Array.from({ length: 50 }, (_, i) => ({
    device_id: "trk-1",
    ts: new Date(T0 + i * 60_000).toISOString(),
    location: { lat: 52 + i / 1000, lon: 13 + i / 1000 },
  }));
  await apiClient(server).ingest(points);
  await check(async () => (await sql`SELECT count(*)::int AS n FROM readings`)[0]!.n === 50, { what: "50 stored" });
}, 60_000);

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
  await pg?.[Symbol.asyncDispose]();
}, 60_000);

/** Statements PostgreSQL received for one request, once a marker sent after it is in the log. */
async function statementsFor(request: () => Promise<unknown>): Promise<number> {
  const count = () => statements(pg.dataDir, DB, "lat IS NOT NULL AND lon IS NOT NULL");
  const before = count();
  await request();
  const marker = `track-marker-${Math.random().toString(36).slice(2)}`;
  await sql.unsafe(`SELECT '${marker}'`);
  await check(() => statements(pg.dataDir, DB, marker) === 1, { what: "the marker in the statement log" });
  return count() - before;
}

test("one statement per track request, as-is or downsampled; 404 for an unknown device", async () => {
  const from = new Date(T0).toISOString();
  const to = new Date(T0 + 50 * 60_000).toISOString();
  const path = (max: number, device = "trk-1") =>
    `/api/v1/devices/${device}/track?from=${from}&to=${to}&max_points=${max}`;
  let all: any;
  expect(await statementsFor(async () => (all = await apiClient(server).get(path(100))))).toBe(1);
  expect(all.status).toBe(200);
  expect(all.body).toMatchObject({ total: 50, downsampled: false });
  expect(all.body.points).toHaveLength(50);
  expect(all.body.points[0]).toEqual([T0, 52, 13]);

  let few: any;
  expect(await statementsFor(async () => (few = await apiClient(server).get(path(10))))).toBe(1);
  expect(few.body).toMatchObject({ total: 50, downsampled: true });
  expect(few.body.points.length).toBeLessThanOrEqual(10);
  expect(few.body.points[0]).toEqual([T0, 52, 13]);
  expect(few.body.points.at(-1)).toEqual([T0 + 49 * 60_000, 52.049, 13.049]);

  const unknown = await apiClient(server).get(path(10, "nobody"));
  expect(unknown.status).toBe(404);
  expect(unknown.body.error.code).toBe("not_found");
  const empty = await apiClient(server).get(
    `/api/v1/devices/trk-1/track?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z`,
  );
  expect(empty.status).toBe(200);
  expect(empty.body).toMatchObject({ total: 0, downsampled: false, points: [] });
});
