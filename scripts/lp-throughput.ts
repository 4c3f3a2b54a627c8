/**
 * A quick figure, not the benchmark (npm run bench): line-protocol readings/s through
 * POST /api/v2/write on this machine. Starts nats-server, PostgreSQL and the server in-process
 * (roles ingest,writer), sends BATCHES bodies of LINES lines (gzip, as Telegraf does) from
 * CONCURRENCY clients, each 204 only after JetStream's ack, and waits until every row is stored.
 *   node_modules/.bin/bun scripts/lp-throughput.ts [batches=200] [lines=1000] [concurrency=4]
 * With FORMAT=ndjson the same readings go as gzip NDJSON to POST /api/v1/telemetry, for comparison.
 */
import { gzipSync } from "node:zlib";
import { createSql } from "../src/db/client.ts";
import { check, freshDatabase, startNats, stopSharedServices } from "../test/helpers/services.ts";
import { startTestServer, TEST_KEY } from "../test/helpers/server.ts";

const [batches = 200, lines = 1000, concurrency = 4] = process.argv.slice(2).map(Number);
const devices = 100;
const t0 = Date.UTC(2026, 0, 1);
const ndjson = process.env.FORMAT === "ndjson";

function body(batch: number): Uint8Array {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const n = batch * lines + i;
    const ms = t0 + Math.floor(n / devices) * 1000;
    const [device, temp, hum] = [`dev-${n % devices}`, (n % 400) / 10, n % 100];
    out.push(
      ndjson
        ? JSON.stringify({
            device_id: device,
            ts: ms,
            metrics: { env_temp: temp, env_hum: hum },
            attributes: { site: "lab" },
          })
        : `env,host=${device},site=lab temp=${temp},hum=${hum}i ${ms}`,
    );
  }
  return gzipSync(out.join("\n"));
}
const [path, auth, ok] = ndjson
  ? ["/api/v1/telemetry", `Bearer ${TEST_KEY}`, 202]
  : ["/api/v2/write?org=o&bucket=b&precision=ms", `Token ${TEST_KEY}`, 204];

await using nats = await startNats();
const databaseUrl = await freshDatabase("lpbench");
await using server = await startTestServer({
  NATS_URL: nats.url,
  DATABASE_URL: databaseUrl,
  TELEMETRY_ROLES: "ingest,writer",
  TELEMETRY_TENANT_RATE: "10000000",
  TELEMETRY_TENANT_BURST: "10000000",
  TELEMETRY_DEVICE_RATE: "1000000",
  TELEMETRY_DEVICE_BURST: "1000000",
});
const bodies = Array.from({ length: batches }, (_, i) => body(i));
let next = 0;
const start = performance.now();
const cpu0 = process.cpuUsage();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < batches) {
      const i = next++;
      const res = await fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { authorization: auth, "content-encoding": "gzip", "content-type": "application/x-ndjson" },
        body: bodies[i],
      });
      if (res.status !== ok) throw new Error(`batch ${i}: ${res.status} ${await res.text()}`);
    }
  }),
);
const acked = (performance.now() - start) / 1000;
const sql = createSql(databaseUrl, { max: 1, name: "bench" });
const total = batches * lines;
await check(async () => Number((await sql`SELECT count(*)::int AS n FROM readings`)[0]!.n) === total, {
  timeoutMs: 600_000,
  intervalMs: 200,
  what: `${total} rows`,
});
const stored = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpu0);
await sql.end({ timeout: 1 });
console.log(
  JSON.stringify({
    format: ndjson ? "ndjson" : "line protocol",
    readings: total,
    batches,
    lines,
    concurrency,
    acked_per_s: Math.round(total / acked),
    stored_per_s: Math.round(total / stored),
    cpu_us_per_reading: Math.round(((cpu.user + cpu.system) / total) * 10) / 10,
  }),
);
await stopSharedServices();
