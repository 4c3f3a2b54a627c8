/**
 * A/B of the server's RSS with a backlog, for comparing code versions or settings on a shared
 * machine in the same minutes: one nats-server and PostgreSQL; for each round and each checkout
 * given, a fresh server from that checkout's source (all roles), PostgreSQL stopped, BACKLOG
 * readings pushed as batches (8 connections, 250 per request; all 202, held in JetStream), RSS
 * sampled every 0.1 s until 3 s after the last; then the server is killed and PostgreSQL started
 * again. Each run has its own nats-server, so no run drains another's backlog.
 *   bun bench/backlog.ts <checkout>[#NAME=value,...]... (env: ROUNDS=2 BACKLOG=1000000)
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
const rounds = Number(process.env.ROUNDS ?? 2);
const backlog = Number(process.env.BACKLOG ?? 1_000_000);
const work = mkdtempSync(join(tmpdir(), "telemetry-backlog-"));
chmodSync(work, 0o755);
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
await using pg = await startLocalPostgres({ dataDir: join(work, "pg") });

let n = 0;
for (let r = 0; r < rounds; r++) {
  for (const { dir, env: ownEnv, name } of runs) {
    await using nats = await startLocalNats({ storeDir: join(work, `nats${n}`) });
    const server = await startServer(
      { checkout: dir },
      {
        NATS_URL: nats.url,
        DATABASE_URL: pg.url,
        TELEMETRY_DATA_DIR: join(work, `data${n++}`),
        LOG_LEVEL: "error",
        ...ownEnv,
      },
    );
    const url = server.url;
    const idle = rssMiB(server.pid);
    await pg.stop();
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(server.pid))), 100);
    const cpu0 = cpuSeconds(server.pid);
    const load = await runLoad(url, "batch", `b${r}${n}`, 600, 8, backlog);
    const cpu = cpuSeconds(server.pid) - cpu0;
    await Bun.sleep(3_000);
    clearInterval(sampler);
    const after = rssMiB(server.pid);
    console.log(
      JSON.stringify({
        round: r,
        dir: name,
        accepted: load.accepted,
        perS: Math.round(load.accepted / load.elapsed),
        cpuUsPerReading: Number(((cpu / load.accepted) * 1e6).toFixed(1)),
        idleMiB: Math.round(idle),
        peakMiB: Math.round(peak),
        afterMiB: Math.round(after),
      }),
    );
    await server.stop("SIGKILL");
    await pg.start();
    rmSync(join(work, `nats${n - 1}`), { recursive: true, force: true });
  }
}
