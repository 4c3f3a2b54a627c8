/**
 * A/B of the single-record path, for comparing code versions on a shared machine in the same
 * minute: one nats-server and PostgreSQL, then for each round and each checkout given, a fresh
 * server from that checkout's source (all roles in one process), an open loop at RATE req/s for
 * SECONDS (p50/p99/max, server CPU µs per request, forced collections), then a closed loop of 64
 * connections for SECONDS (req/s, p99). Also the RSS peak (sampled every 0.1 s) and the event loop's delay
 * (p99 and max, prom-client's monitorEventLoopDelay) during the open loop.
 *   bun bench/latency.ts <checkout>[#NAME=value,...]... (env: ROUNDS=3 SECONDS=15 RATE=5000 CLOSED=64, LAT_ENV='{"K":"V"}')
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNats } from "../src/embedded/nats-server.ts";
import { startLocalPostgres } from "../src/embedded/postgres.ts";
import { configureLogger } from "../src/lib/log.ts";
import { checkoutRuns, cpuSeconds, rssMiB, runLoad, startServer } from "./env.ts";

configureLogger("warn", true);
const runs = checkoutRuns(process.argv.slice(2));
const rounds = Number(process.env.ROUNDS ?? 3);
const seconds = Number(process.env.SECONDS ?? 15);
const rate = Number(process.env.RATE ?? 5_000);
const closed = Number(process.env.CLOSED ?? 64);
const extraEnv = JSON.parse(process.env.LAT_ENV ?? "{}") as Record<string, string>;
const work = mkdtempSync(join(tmpdir(), "telemetry-latency-"));
chmodSync(work, 0o755);
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
await using nats = await startLocalNats({ storeDir: join(work, "nats") });
await using pg = await startLocalPostgres({ dataDir: join(work, "pg") });

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, "gm"))) sum += Number(m[1]);
  return sum;
}

let n = 0;
for (let r = 0; r < rounds; r++) {
  for (const { dir, env: ownEnv, name } of runs) {
    const server = await startServer(
      { checkout: dir },
      {
        NATS_URL: nats.url,
        DATABASE_URL: pg.url,
        TELEMETRY_DATA_DIR: join(work, `data${n++}`),
        ...extraEnv,
        ...ownEnv,
      },
    );
    const url = server.url;
    // warm-up (JIT), not counted
    await runLoad(url, "single", `w${r}${n}`, 3, rate);
    const cpu0 = cpuSeconds(server.pid);
    const gc0 = await metric(url, "telemetry_memory_forced_gc_total");
    const gcs0 = await metric(url, "telemetry_memory_forced_gc_seconds_total"); // this scrape also resets the loop-delay histogram
    let rssPeak = 0;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssMiB(server.pid));
    }, 100);
    const open = await runLoad(url, "single", `o${r}${n}`, seconds, rate);
    clearInterval(sampler);
    // prom-client's event-loop delay (monitorEventLoopDelay, 10 ms resolution) since the last scrape.
    const lagMax = await metric(url, "telemetry_nodejs_eventloop_lag_max_seconds");
    const lagP99 = await metric(url, "telemetry_nodejs_eventloop_lag_p99_seconds");
    const cpu = cpuSeconds(server.pid) - cpu0;
    const gc = (await metric(url, "telemetry_memory_forced_gc_total")) - gc0;
    const gcs = (await metric(url, "telemetry_memory_forced_gc_seconds_total")) - gcs0;
    const rss = rssMiB(server.pid);
    const cpu1 = cpuSeconds(server.pid);
    const shut = closed > 0 ? await runLoad(url, "closed", `c${r}${n}`, seconds, closed) : undefined;
    const cpuClosed = cpuSeconds(server.pid) - cpu1;
    console.log(
      JSON.stringify({
        round: r,
        dir: name,
        open: {
          p50: open.p50,
          p90: open.p90,
          p99: open.p99,
          max: open.max,
          ok: open.statuses["202"] ?? 0,
          requests: open.requests,
          cpuUsPerReq: Math.round((cpu / open.requests) * 1e6),
          forcedGc: gc,
          forcedGcMs: Math.round(gcs * 1000),
          rssMiB: Math.round(rss),
          rssPeakMiB: Math.round(rssPeak),
          loopLagMaxMs: Math.round(lagMax * 1000),
          loopLagP99Ms: Math.round(lagP99 * 1000),
        },
        closed: shut && {
          reqPerS: Math.round((shut.statuses["202"] ?? 0) / shut.elapsed),
          p99: shut.p99,
          cpuUsPerReq: Math.round((cpuClosed / shut.requests) * 1e6),
        },
      }),
    );
    await server.stop();
  }
}
