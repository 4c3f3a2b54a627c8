/**
 * Line-protocol series tags (decision 0430's follow-up, line_protocol.series_tags): Telegraf's
 * per-CPU `cpu` lines — one host, one timestamp, the same fields, `cpu=cpu0`, `cpu=cpu1`, … —
 * written by the official @influxdata/influxdb-client. Without series tags the second line is a
 * 400 (the same reading with other values); with `cpu` set for the tenant through the admin API
 * (or the CLI) every line is stored, its metrics named `cpu_usage_user.cpu0`, and a re-sent batch
 * makes no new rows. Real server, nats-server and PostgreSQL.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { HttpError as InfluxHttpError, InfluxDB, Point, setLogger } from "@influxdata/influxdb-client";
import { createSql, type Sql } from "../../src/db/client.ts";
import { BASE_TS } from "../helpers/data.ts";
import { writerDrained } from "../helpers/drained.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { OTHER_KEY, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

const ADMIN = "admin-token-0123456789abcdef";
let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;
let databaseUrl: string;

beforeAll(async () => {
  setLogger({ error: () => {}, warn: () => {} }); // the errors are asserted, not printed
  nats = await startNats();
  databaseUrl = await freshDatabase("lps");
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    TELEMETRY_ROLES: "ingest,writer,api",
    TELEMETRY_ADMIN_TOKEN: ADMIN,
    TELEMETRY_AUTH_CACHE_TTL: "300ms",
  });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

/** Telegraf's inputs.cpu (percpu and totalcpu on) and a mem line of one host at one timestamp. */
const cpuPoints = (host: string) => [
  ...["cpu0", "cpu1", "cpu2", "cpu3", "cpu-total"].map((cpu, i) =>
    new Point("cpu")
      .tag("host", host)
      .tag("cpu", cpu)
      .floatField("usage_user", 10 + i)
      .floatField("usage_system", 1 + i)
      .timestamp(new Date(BASE_TS)),
  ),
  new Point("mem").tag("host", host).floatField("used_percent", 70.25).timestamp(new Date(BASE_TS)),
];

async function write(token: string, points: Point[]): Promise<void> {
  const api = new InfluxDB({ url: server.url, token }).getWriteApi("my-org", "my-bucket", "ms", {
    gzipThreshold: 0,
    maxRetries: 0,
    flushInterval: 0,
  });
  api.writePoints(points);
  await api.close();
}

const metricsOf = async (tenant: string, device: string) =>
  (
    await sql`SELECT metrics FROM readings WHERE tenant = ${tenant} AND device_id = ${device} ORDER BY metrics::text`
  ).map((r) => r.metrics);

test("without series tags the second per-CPU line is a 400 naming series_tags; the first is stored", async () => {
  const err = await write(TEST_KEY, cpuPoints("plain")).catch((e) => e);
  expect(err).toBeInstanceOf(InfluxHttpError);
  expect(err.statusCode).toBe(400);
  expect(err.body).toContain("line_protocol.series_tags");
  await writerDrained(nats.url);
  expect(await metricsOf("acme", "plain")).toEqual([
    { cpu_usage_system: 1, cpu_usage_user: 10 },
    { mem_used_percent: 70.25 },
  ]);
});

test("with series_tags [cpu] (admin API) every per-CPU line is stored under its own metric names; a re-send adds nothing", async () => {
  const res = await fetch(`${server.url}/admin/v1/tenants/beta`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ line_protocol: { series_tags: ["cpu"] } }),
  });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { line_protocol: unknown }).line_protocol).toEqual({ series_tags: ["cpu"] });

  // The key cache sees the change within TELEMETRY_AUTH_CACHE_TTL.
  await check(
    async () => {
      const r = await write(OTHER_KEY, cpuPoints("host-1")).then(
        () => true,
        () => false,
      );
      return r;
    },
    { what: "the series mapping in effect", timeoutMs: 10_000, intervalMs: 200 },
  );
  await check(async () => (await metricsOf("beta", "host-1")).length === 6, { what: "6 rows of host-1" });
  await write(OTHER_KEY, cpuPoints("host-1")); // the same batch again: duplicates
  await writerDrained(nats.url);
  expect(await metricsOf("beta", "host-1")).toEqual([
    { "cpu_usage_system.cpu-total": 5, "cpu_usage_user.cpu-total": 14 },
    { "cpu_usage_system.cpu0": 1, "cpu_usage_user.cpu0": 10 },
    { "cpu_usage_system.cpu1": 2, "cpu_usage_user.cpu1": 11 },
    { "cpu_usage_system.cpu2": 3, "cpu_usage_user.cpu2": 12 },
    { "cpu_usage_system.cpu3": 4, "cpu_usage_user.cpu3": 13 },
    { mem_used_percent: 70.25 },
  ]);
});

test("the CLI sets and clears a tenant's series tags (--lp-series-tags)", () => {
  const cli = (value: string) =>
    Bun.spawnSync({
      cmd: [
        process.execPath,
        "src/cli/main.ts",
        "tenants",
        "update",
        "beta",
        "--database-url",
        databaseUrl,
        "--json",
        "--lp-series-tags",
        value,
      ],
      cwd: `${import.meta.dir}/../..`,
      env: { PATH: process.env.PATH!, LOG_LEVEL: "warn" },
    });
  const set = cli("cpu,path");
  expect(set.stderr.toString()).toBe("");
  expect(JSON.parse(set.stdout.toString()).line_protocol).toEqual({ series_tags: ["cpu", "path"] });
  const cleared = cli("default");
  expect(JSON.parse(cleared.stdout.toString()).line_protocol).toEqual({});
});
