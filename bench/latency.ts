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
import { readFileSync } from "node:fs";
import { checkoutRuns, cpuSeconds, rssMiB, runLoad, runQueueSeconds, startServer } from "./env.ts";

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

/** Cumulative bucket counts of a histogram (one label set) from /metrics. */
async function buckets(url: string, name: string): Promise<Array<[number, number]>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} ([0-9.e+-]+)`, "gm"))].map((m) => [
    m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]),
    Number(m[2]),
  ]);
}

/** The upper bucket bound under which a fraction q of the observations between two scrapes fell, ms. */
function quantileMs(before: Array<[number, number]>, after: Array<[number, number]>, q: number): number {
  const d = after.map(([le, c], i) => [le, c - (before[i]?.[1] ?? 0)] as [number, number]);
  const total = d.at(-1)?.[1] ?? 0;
  const hit = d.find(([, c]) => c >= q * total);
  return hit ? hit[0] * 1000 : Number.NaN;
}

const natsPid = Number(readFileSync(join(work, "nats", "nats-server.pid"), "utf8").trim());
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
    const natsCpu0 = cpuSeconds(natsPid);
    const gc0 = await metric(url, "telemetry_memory_forced_gc_total");
    const gcs0 = await metric(url, "telemetry_memory_forced_gc_seconds_total"); // this scrape also resets the loop-delay histogram
    const pub0 = await buckets(url, "telemetry_ingest_publish_seconds");
    const waitMain0 = runQueueSeconds(server.pid, true);
    const waitAll0 = runQueueSeconds(server.pid);
    const waitNats0 = runQueueSeconds(natsPid);
    const load0 = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
    let rssPeak = 0;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssMiB(server.pid));
    }, 100);
    const open = await runLoad(url, "single", `o${r}${n}`, seconds, rate);
    clearInterval(sampler);
    const perS = (s: number) => Math.round((s * 1000) / open.elapsed);
    const waitMain = perS(runQueueSeconds(server.pid, true) - waitMain0);
    const waitAll = perS(runQueueSeconds(server.pid) - waitAll0);
    const waitNats = perS(runQueueSeconds(natsPid) - waitNats0);
    const pub1 = await buckets(url, "telemetry_ingest_publish_seconds");
    // prom-client's event-loop delay (monitorEventLoopDelay, 10 ms resolution) since the last scrape.
    const lagMax = await metric(url, "telemetry_nodejs_eventloop_lag_max_seconds");
    const lagP99 = await metric(url, "telemetry_nodejs_eventloop_lag_p99_seconds");
    const cpu = cpuSeconds(server.pid) - cpu0;
    const natsCpu = cpuSeconds(natsPid) - natsCpu0;
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
          natsCpuUsPerReq: Math.round((natsCpu / open.requests) * 1e6),
          generatorCpuUsPerReq: open.tail?.genCpuUsPerReq,
          forcedGc: gc,
          forcedGcMs: Math.round(gcs * 1000),
          rssMiB: Math.round(rss),
          rssPeakMiB: Math.round(rssPeak),
          loopLagMaxMs: Math.round(lagMax * 1000),
          loopLagP99Ms: Math.round(lagP99 * 1000),
          // where the slow requests come from (decision 0570)
          pubAckP90Ms: quantileMs(pub0, pub1, 0.9),
          pubAckP99Ms: quantileMs(pub0, pub1, 0.99),
          runQueueMsPerS: { loop: waitMain, server: waitAll, nats: waitNats, generator: open.tail?.genRunQueueMsPerS },
          tail: open.tail && { ...open.tail, genRunQueueMsPerS: undefined, genCpuUsPerReq: undefined },
          load: `${load0}→${readFileSync("/proc/loadavg", "utf8").split(" ")[0]}`,
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
