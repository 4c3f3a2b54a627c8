/**
 * Line protocol written by real InfluxDB clients nobody here wrote: the official JS client
 * (@influxdata/influxdb-client, gzip on) to /api/v2/write, Debian's python3-influxdb to /write,
 * Debian's `influx` 1.x CLI through /write. Rows checked in PostgreSQL; a re-sent batch makes no
 * new rows; two measurements of one host at one timestamp split over two requests are two rows
 * (one line = one reading, decision 0430); errors reach the clients in InfluxDB's shape.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HttpError as InfluxHttpError, InfluxDB, Point, setLogger } from "@influxdata/influxdb-client";
import { createSql, type Sql } from "../../src/db/client.ts";
import { BASE_TS } from "../helpers/data.ts";
import { writerDrained } from "../helpers/drained.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;
let port: string;

beforeAll(async () => {
  setLogger({ error: () => {}, warn: () => {} }); // the errors are asserted, not printed
  nats = await startNats();
  const databaseUrl = await freshDatabase("lpc");
  server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: databaseUrl, TELEMETRY_ROLES: "ingest,writer" });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
  port = new URL(server.url).port;
}, 60_000);

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const rowsOf = async (device: string) =>
  [
    ...(await sql`
      SELECT (extract(epoch from ts) * 1000)::bigint::text AS ms, lat, lon, metrics, attributes
      FROM readings WHERE tenant = 'acme' AND device_id = ${device} ORDER BY ts, metrics::text`),
  ].map((r): Record<string, unknown> => ({ ...r, ms: Number(r.ms) }));

/** Waits until `device` has `n` rows, then a little longer to see that no more come. */
/** Waits until `device` has `n` rows and the writer has taken every message (so a row too many would be there). */
async function settledRows(device: string, n: number) {
  await check(async () => (await rowsOf(device)).length >= n, { what: `${n} rows of ${device}` });
  await writerDrained(nats.url);
  return rowsOf(device);
}

const writeApi = (opts: { batchSize?: number } = {}) =>
  new InfluxDB({ url: server.url, token: TEST_KEY }).getWriteApi("my-org", "my-bucket", "ms", {
    gzipThreshold: 0,
    maxRetries: 0,
    batchSize: opts.batchSize ?? 1000,
    flushInterval: 0,
  });

async function run(cmd: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe("@influxdata/influxdb-client to /api/v2/write (gzip)", () => {
  const points = () => [
    new Point("cpu")
      .tag("host", "js-1")
      .tag("cpu", "cpu-total")
      .floatField("usage_user", 12.5)
      .intField("procs", 7)
      .timestamp(new Date(BASE_TS)),
    new Point("mem")
      .tag("host", "js-1")
      .floatField("used_percent", 70.25)
      .booleanField("swapping", false)
      .timestamp(new Date(BASE_TS)),
    new Point("gps")
      .tag("device", "js-2")
      .floatField("lat", 52.52)
      .floatField("lon", 13.405)
      .stringField("fix", "3d")
      .timestamp(new Date(BASE_TS + 1000)),
  ];

  test("points become rows: one per line, with metrics, attributes and location", async () => {
    const api = writeApi();
    api.writePoints(points());
    await api.close();
    expect(await settledRows("js-1", 2)).toEqual([
      {
        ms: BASE_TS,
        lat: null,
        lon: null,
        metrics: { cpu_procs: 7, cpu_usage_user: 12.5 },
        attributes: { cpu: "cpu-total" },
      },
      { ms: BASE_TS, lat: null, lon: null, metrics: { mem_swapping: 0, mem_used_percent: 70.25 }, attributes: null },
    ]);
    expect(await settledRows("js-2", 1)).toEqual([
      { ms: BASE_TS + 1000, lat: 52.52, lon: 13.405, metrics: null, attributes: { gps_fix: "3d" } },
    ]);
  });

  test("the same batch sent again (a client's retry) makes no new rows", async () => {
    const api = writeApi();
    api.writePoints(points());
    await api.close();
    expect(await settledRows("js-1", 2)).toHaveLength(2);
    expect(await settledRows("js-2", 1)).toHaveLength(1);
  });

  test("two measurements of one host at one timestamp, split over two requests, are both stored", async () => {
    const api = writeApi({ batchSize: 1 }); // one point per request, as a Telegraf batch boundary would split them
    api.writePoint(new Point("disk").tag("host", "js-split").floatField("free", 10).timestamp(new Date(BASE_TS)));
    api.writePoint(new Point("net").tag("host", "js-split").floatField("rx", 20).timestamp(new Date(BASE_TS)));
    await api.close();
    const rows = await settledRows("js-split", 2);
    expect(rows.map((r) => r.metrics)).toEqual([{ disk_free: 10 }, { net_rx: 20 }]);
  });

  test("a bad point is a 400 in InfluxDB's shape naming the line; the good point of the request is stored", async () => {
    const api = writeApi();
    api.writePoint(new Point("env").tag("room", "no-device").floatField("temp", 1).timestamp(new Date(BASE_TS)));
    api.writePoint(new Point("env").tag("device", "js-partial").floatField("temp", 2).timestamp(new Date(BASE_TS)));
    const err = await api.close().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InfluxHttpError);
    const e = err as InfluxHttpError;
    expect(e.statusCode).toBe(400);
    expect(e.json.code).toBe("invalid");
    expect(e.json.message).toContain("partial write: 1 of 2 lines stored");
    expect(e.json.message).toContain("line 1: point 'env' has no device tag");
    expect((await settledRows("js-partial", 1)).map((r) => r.metrics)).toEqual([{ env_temp: 2 }]);
  });

  test("a wrong token is a 401 in InfluxDB's shape", async () => {
    const api = new InfluxDB({ url: server.url, token: "wrong-token-0123456789" }).getWriteApi("o", "b", "ms", {
      maxRetries: 0,
    });
    api.writePoint(new Point("env").tag("device", "js-401").floatField("temp", 1));
    const e = (await api.close().catch((x: unknown) => x)) as InfluxHttpError;
    expect(e.statusCode).toBe(401);
    expect(e.json).toEqual({ code: "unauthorized", message: "unknown or revoked API key" });
  });
});

describe("Debian's python3-influxdb to /write", () => {
  const script = (body: string) => [
    "/usr/bin/python3",
    "-c",
    `from influxdb import InfluxDBClient\nc = InfluxDBClient(host="127.0.0.1", port=${port}, username="telegraf", password=${JSON.stringify(TEST_KEY)}, database="fleet")\n${body}`,
  ];
  const write = `c.create_database("fleet")
print(c.ping())
ok = c.write_points([
  {"measurement": "env", "tags": {"device": "py-1", "site": "lab"}, "time": ${BASE_TS}, "fields": {"temp": 21.5, "hum": 40}},
  {"measurement": "power", "tags": {"device": "py-1"}, "time": ${BASE_TS}, "fields": {"watts": 3.25}},
], time_precision="ms")
print(ok)`;

  test("write_points stores the points; a second run makes no new rows", async () => {
    for (let i = 0; i < 2; i++) {
      const r = await run(script(write));
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out.trim().split("\n")).toEqual(["1.8.10", "True"]);
    }
    const rows = await settledRows("py-1", 2);
    expect(rows.map((r) => [r.ms, r.metrics, r.attributes])).toEqual([
      [BASE_TS, { env_hum: 40, env_temp: 21.5 }, { site: "lab" }],
      [BASE_TS, { power_watts: 3.25 }, null],
    ]);
  });

  test("a bad point and a wrong password are errors the client raises with InfluxDB's message", async () => {
    const bad = await run(
      script(
        `c.write_points([{"measurement": "env", "tags": {"device": "py-2"}, "time": ${BASE_TS}, "fields": {"lat": 91.0, "lon": 0.0}}], time_precision="ms")`,
      ),
    );
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain("InfluxDBClientError: 400");
    expect(bad.err).toContain("location.lat: lat must be between -90 and 90");
    const wrong = await run([
      "/usr/bin/python3",
      "-c",
      `from influxdb import InfluxDBClient\nc = InfluxDBClient(host="127.0.0.1", port=${port}, username="u", password="not-the-key-0123456789", database="d")\nc.write_points([{"measurement": "m", "tags": {"device": "py-3"}, "fields": {"v": 1}}])`,
    ]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toContain("401");
    expect(wrong.err).toContain("unknown or revoked API key");
    expect(await rowsOf("py-2")).toEqual([]);
    expect(await rowsOf("py-3")).toEqual([]);
  });
});

describe("Debian's influx 1.x CLI through /write", () => {
  const cli = (statement: string, password = TEST_KEY) =>
    run([
      "influx",
      "-host",
      "127.0.0.1",
      "-port",
      port,
      "-username",
      "u",
      "-password",
      password,
      "-database",
      "db",
      "-execute",
      statement,
    ]);

  test("INSERT stores the point; the same INSERT again makes no new row", async () => {
    const line = `INSERT env,device=cli-1,room=kitchen temp=19.5,door=true ${BASE_TS}000000`;
    for (let i = 0; i < 2; i++) {
      const r = await cli(line);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
    }
    expect(await settledRows("cli-1", 1)).toEqual([
      { ms: BASE_TS, lat: null, lon: null, metrics: { env_door: 1, env_temp: 19.5 }, attributes: { room: "kitchen" } },
    ]);
  });

  test("a malformed INSERT and a wrong password are reported with InfluxDB's error text", async () => {
    const bad = await cli(`INSERT env,device=cli-2 temp=1.2.3 ${BASE_TS}000000`);
    expect(bad.out + bad.err).toContain("invalid field value '1.2.3' in field 'temp'");
    const wrong = await cli(`INSERT env,device=cli-3 temp=1 ${BASE_TS}000000`, "not-the-key-0123456789");
    expect(wrong.out + wrong.err).toContain("unknown or revoked API key");
    expect(await rowsOf("cli-2")).toEqual([]);
    expect(await rowsOf("cli-3")).toEqual([]);
  });
});
