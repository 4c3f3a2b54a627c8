/**
 * MQTT with a device library nobody here wrote: Debian's python3-paho-mqtt (1.6, run with
 * /usr/bin/python3: the pyenv python3 on PATH does not see Debian's packages) publishes QoS 1 to
 * the tenant's device topic through the server's MQTT listener; the TCP connection is cut under
 * it mid-way with PUBACKs outstanding, paho reconnects and resends them (DUP), and every reading
 * lands exactly once in PostgreSQL.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { createSql, type Sql } from "../../src/db/client.ts";
import { freePort } from "../../src/embedded/process.ts";
import { createKey } from "../../src/tenants/store.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase } from "../helpers/services.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = `${import.meta.dir}/../clients/paho_publish.py`;
let server: TestServer;
let sql: Sql;
let mqttPort: number;
let device: { user: string; key: string };

const topic = (d: string) => `tenant/acme/device/${d}/telemetry`;
const rows = async (d: string) =>
  (
    await sql`SELECT count(*)::int AS n, count(DISTINCT ts)::int AS distinct_ts FROM readings WHERE tenant = 'acme' AND device_id = ${d}`
  )[0] as {
    n: number;
    distinct_ts: number;
  };

function paho(d: string, count: number, base: number) {
  const r = Bun.spawnSync({
    cmd: [
      PYTHON,
      SCRIPT,
      "127.0.0.1",
      String(mqttPort),
      device.user,
      device.key,
      topic(d),
      String(count),
      String(base),
    ],
    stdout: "pipe",
    stderr: "pipe",
    timeout: 90_000,
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

beforeAll(async () => {
  expect(existsSync(PYTHON)).toBe(true);
  const databaseUrl = await freshDatabase("mqtt_paho");
  mqttPort = await freePort();
  server = await startTestServer({
    DATABASE_URL: databaseUrl,
    TELEMETRY_NATS_PORT: String(await freePort()),
    TELEMETRY_MQTT_PORT: String(mqttPort),
    TELEMETRY_MQTT_HOST: "127.0.0.1",
    TELEMETRY_AUTH_CACHE_TTL: "1s",
  });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
  const created = (await createKey(sql, "acme", "paho"))!;
  device = { user: created.row.prefix, key: created.key };
}, 120_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
});

test("paho-mqtt, QoS 1, the connection cut mid-way: paho reconnects and resends, each reading stored exactly once", async () => {
  // The new key reaches nats-server's users within the sync interval (1 s here).
  await check(() => paho("paho-probe", 2, BASE_TS).code === 0, {
    what: "the key accepted over MQTT by paho",
    timeoutMs: 30_000,
    intervalMs: 500,
  });
  const count = 40;
  const run = paho("paho-1", count, BASE_TS + 3_600_000);
  expect(run.err).toBe("");
  expect(run.code).toBe(0);
  const report = JSON.parse(run.out) as { connects: number[]; in_flight_at_drop: number; acknowledged: number };
  // Two successful connections (the cut in between), half the messages unacknowledged at the cut
  // (sent again with DUP after the reconnect), every publish acknowledged in the end.
  expect(report).toEqual({ connects: [0, 0], in_flight_at_drop: count / 2, acknowledged: count });
  await check(async () => (await rows("paho-1")).n >= count, {
    what: `${count} readings of paho-1`,
    timeoutMs: 30_000,
  });
  await check(
    async () => {
      const c = await server.broker.jsm.consumers.info("TELEMETRY_MQTT", "mqtt");
      const w = await server.broker.jsm.consumers.info("TELEMETRY", "writer");
      return c.num_pending + c.num_ack_pending + w.num_pending + w.num_ack_pending === 0;
    },
    { what: "the bridge and the writer done", timeoutMs: 30_000 },
  );
  expect(await rows("paho-1")).toEqual({ n: count, distinct_ts: count });
  const { state } = await server.broker.jsm.streams.info("TELEMETRY_MQTT", {
    subjects_filter: "tenant.acme.device.paho-1.>",
  });
  // The resent copies did reach the broker (63 messages for 40 readings in one run): the rows are
  // exactly once because the pipeline made them so, not because nothing was sent twice.
  expect(state.messages).toBeGreaterThan(count);
  const values = await sql`SELECT (metrics->>'n')::int AS n FROM readings WHERE device_id = 'paho-1' ORDER BY ts`;
  expect(values.map((v) => v.n)).toEqual(Array.from({ length: count }, (_, i) => i));
}, 120_000);
