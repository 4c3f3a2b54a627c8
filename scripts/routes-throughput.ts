/**
 * A quick figure, not the benchmark (npm run bench): ingest and writer throughput with ROUTES
 * active message routes (default 3) against none, in one process (roles ingest,writer,evaluator:
 * route delivery runs with the evaluator). Each route forwards every reading to a NATS subject (the
 * most work a route can do per reading: nothing filtered out; ROUTES_MATCH=none for routes that
 * match nothing). Prints both runs and the ratio.
 *   node_modules/.bin/bun scripts/routes-throughput.ts [bodies=200] [records=500] [concurrency=4]
 * Also prints the CPU µs per reading of each process from the first POST until the routes caught
 * up: this process (server and load generator), nats-server, PostgreSQL (all its backends).
 */
import { cpuSeconds, treeCpuSeconds } from "../bench/env.ts";
import { createSql } from "../src/db/client.ts";
import { apiClient } from "../test/helpers/api.ts";
import { check, freshDatabase, sharedPostgres, startNats, stopSharedServices } from "../test/helpers/services.ts";
import { startTestServer, TEST_KEY } from "../test/helpers/server.ts";

const [bodies = 200, records = 500, concurrency = 4] = process.argv.slice(2).map(Number);
const routes = Number(process.env.ROUTES ?? 3);
const t0 = Date.UTC(2026, 0, 1);

function body(batch: number): string {
  const out: string[] = [];
  for (let i = 0; i < records; i++) {
    const n = batch * records + i;
    out.push(
      JSON.stringify({ device_id: `dev-${n % 100}`, ts: t0 + Math.floor(n / 100) * 1000, metrics: { speed: n % 120 } }),
    );
  }
  return out.join("\n");
}

async function run(routeCount: number) {
  await using nats = await startNats();
  const databaseUrl = await freshDatabase("routebench");
  await using server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    TELEMETRY_ROLES: "ingest,writer,evaluator,api",
    TELEMETRY_TENANT_RATE: "10000000",
    TELEMETRY_TENANT_BURST: "10000000",
    TELEMETRY_DEVICE_RATE: "1000000",
    TELEMETRY_DEVICE_BURST: "1000000",
  });
  const api = apiClient(server);
  for (let r = 0; r < routeCount; r++)
    await api.post("/api/v1/routes", {
      name: `bench-${r}`,
      // ROUTES_MATCH=none: routes whose filter matches nothing (the cost of reading the stream alone).
      filter: process.env.ROUTES_MATCH === "none" ? { devices: ["nobody"] } : {},
      destination: { type: "nats" },
    });
  await server.routes!.syncNow();
  const texts = Array.from({ length: bodies }, (_, i) => body(i));
  const pg = await sharedPostgres();
  const cpu = () => ({
    server: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
    nats: cpuSeconds(nats.pid!),
    pg: treeCpuSeconds(pg.pid!),
  });
  const cpu0 = cpu();
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies) {
        const i = next++;
        const res = await fetch(`${server.url}/api/v1/telemetry`, {
          method: "POST",
          headers: { authorization: `Bearer ${TEST_KEY}`, "content-type": "application/x-ndjson" },
          body: texts[i],
        });
        if (res.status !== 202) throw new Error(`body ${i}: ${res.status} ${await res.text()}`);
      }
    }),
  );
  const acked = (performance.now() - start) / 1000;
  const total = bodies * records;
  const sql = createSql(databaseUrl, { max: 1, name: "bench" });
  await check(async () => Number((await sql`SELECT count(*)::int AS n FROM readings`)[0]!.n) === total, {
    timeoutMs: 600_000,
    intervalMs: 200,
    what: `${total} rows`,
  });
  const stored = (performance.now() - start) / 1000;
  await sql.end({ timeout: 1 });
  await check(async () => (await api.get("/api/v1/routes")).body.routes.every((r: { lag: number }) => r.lag === 0), {
    timeoutMs: 600_000,
    intervalMs: 200,
    what: "routes caught up",
  });
  const routed = (performance.now() - start) / 1000;
  const cpu1 = cpu();
  const us = (k: keyof typeof cpu0) => Math.round(((cpu1[k] - cpu0[k]) * 1e6) / total);
  return {
    routes: routeCount,
    readings: total,
    acked_per_s: Math.round(total / acked),
    stored_per_s: Math.round(total / stored),
    routes_done_s: Math.round(routed * 10) / 10,
    cpu_us_per_reading: { server: us("server"), nats: us("nats"), pg: us("pg") },
  };
}

// ROUNDS=n alternates the two runs n times (same minutes on a busy machine).
for (let round = 0; round < Number(process.env.ROUNDS ?? 1); round++) {
  const without = await run(0);
  const withRoutes = await run(routes);
  console.log(JSON.stringify(without));
  console.log(JSON.stringify(withRoutes));
  console.log(
    JSON.stringify({
      ingest_ratio: Math.round((withRoutes.acked_per_s / without.acked_per_s) * 100) / 100,
      writer_ratio: Math.round((withRoutes.stored_per_s / without.stored_per_s) * 100) / 100,
    }),
  );
}
await stopSharedServices();
