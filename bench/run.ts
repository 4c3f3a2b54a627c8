/**
 * `bun run bench` / `npm run bench`: in one run on this machine, starts nats-server and PostgreSQL
 * (temp dirs) and prints markdown tables of
 *   1. raw: the raw parts on the same rows: hand-pipelined JetStream publish with acks, a consumer
 *      with acks, PostgreSQL insert by the writer's own method (bench/raw-phase.ts, raw.ts);
 *   2. naive: a naive baseline under the same load (bench/naive.ts, bench/baseline.ts);
 *   3. server: the compiled executable, all roles in one process, driven over HTTP from a
 *      separate process (bench/load.ts): batched end to end, single records at a fixed rate, RSS
 *      with a 1M backlog (PostgreSQL stopped) and the writer's drain of it (bench/phases.ts);
 *      ratios against 1 and 2;
 *   4. routes: batched end to end again, fresh services, with no message route and with 3 routes
 *      republishing every reading to NATS (bench/routes-phase.ts), and the ratio;
 *   5. peers: InfluxDB 1.x, VictoriaMetrics and the server (NDJSON and line protocol), each started
 *      fresh, under the same load (bench/peers-phase.ts, peers.ts), and server ÷ InfluxDB.
 * BENCH_PHASES or --phases (bench/select.ts) picks phases, e.g. `BENCH_PHASES=peers` or
 * `--phases=influxdb,ndjson`; default all.
 * BENCH_SECONDS (default 60) sets the batched phase; the naive baseline and the single records run
 * min(BENCH_SECONDS, 20) s.
 * BENCH_BACKLOG (default 1,000,000) the backlog; BENCH_RAW (default 300,000) the raw parts' rows;
 * BENCH_READINGS (default 1,000,000) the peers phase's batched readings per system;
 * BENCH_EXECUTABLE a telemetry executable to measure instead of building one from this checkout.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { startLocalNats } from "../src/embedded/nats-server.ts";
import { startLocalPostgres } from "../src/embedded/postgres.ts";
import { configureLogger } from "../src/lib/log.ts";
import { naiveEndToEnd } from "./baseline.ts";
import { buildExecutable, fmt, pct, startServer } from "./env.ts";
import { peersPhase, peersTable } from "./peers-phase.ts";
import { backlogAndDrain, batchedEndToEnd, singleRecords, type Row } from "./phases.ts";
import { rawParts } from "./raw-phase.ts";
import { routesPhase } from "./routes-phase.ts";
import { phasesFromArgs } from "./select.ts";

configureLogger("warn", true);
const selection = phasesFromArgs(Bun.argv.slice(2), process.env.BENCH_PHASES);
const seconds = Number(process.env.BENCH_SECONDS ?? 60);
const backlog = Number(process.env.BENCH_BACKLOG ?? 1_000_000);
const rawReadings = Number(process.env.BENCH_RAW ?? 300_000);
const peerReadings = Number(process.env.BENCH_READINGS ?? 1_000_000);
const CONNECTIONS = 8;
const SINGLE_RATE = 5_000;
const singleSeconds = Math.min(seconds, 20);
const load0 = loadavg();
const work = mkdtempSync(join(tmpdir(), "telemetry-bench-"));
chmodSync(work, 0o755);
// Ctrl-C or a kill: exit, so the children's exit hooks (src/embedded/process.ts) kill them; then the temp dir goes.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
const rows: Row[] = [];
const step = (what: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${what}`);
const prebuilt = process.env.BENCH_EXECUTABLE;
const executable = prebuilt ?? join(work, "telemetry");

if (prebuilt) step(`using the executable ${prebuilt} (BENCH_EXECUTABLE)`);
else if (selection.server || selection.routes || selection.peers.has("ndjson") || selection.peers.has("lp")) {
  step("building the executable");
  buildExecutable(executable);
}

if (selection.raw || selection.naive || selection.server) {
  await using nats = await startLocalNats({ storeDir: join(work, "nats") });
  await using pg = await startLocalPostgres({ dataDir: join(work, "pg") });
  // 1. Raw parts, same rows (before the server exists: the raw stream takes the same subjects).
  const raw = selection.raw ? await rawParts(nats, pg, rawReadings, SINGLE_RATE, singleSeconds, step) : undefined;
  if (raw) rows.push(...raw.rows);
  // 2. The naive baseline, same load.
  let naive: Awaited<ReturnType<typeof naiveEndToEnd>> | undefined;
  if (selection.naive) {
    step(`naive baseline, ${singleSeconds} s`);
    naive = await naiveEndToEnd(nats.url, pg, singleSeconds, CONNECTIONS);
    rows.push(...naive.rows);
  }
  // 3. The server.
  if (selection.server) {
    step("server: batched end to end");
    const server = await startServer(executable, {
      NATS_URL: nats.url,
      DATABASE_URL: pg.url,
      TELEMETRY_DATA_DIR: join(work, "data"),
    });
    let e2e: Awaited<ReturnType<typeof batchedEndToEnd>>;
    let drain: Awaited<ReturnType<typeof backlogAndDrain>>;
    try {
      e2e = await batchedEndToEnd(server, nats.pid!, seconds, CONNECTIONS, "e2e");
      rows.push(...e2e.rows);
      step(`server: single records at ${fmt(SINGLE_RATE)} req/s`);
      rows.push(...(await singleRecords(server, singleSeconds, SINGLE_RATE, "single")).rows);
      step(`server: ${fmt(backlog)} readings backlog with PostgreSQL stopped, then drain`);
      drain = await backlogAndDrain(server, pg, backlog, "backlog");
      rows.push(...drain.rows);
    } finally {
      await server.stop();
    }
    // Ratios.
    if (raw) {
      rows.push([
        "Ratio: server end to end / raw publish, / raw consume, / raw insert (better of 1 and 2 connections)",
        `${pct(e2e.e2e / raw.publish)}, ${pct(e2e.e2e / raw.consume)}, ${pct(e2e.e2e / raw.insert)}`,
        "the slowest raw part bounds the pipeline",
      ]);
    }
    if (naive) rows.push(["Ratio: server end to end / naive baseline", `${(e2e.e2e / naive.e2e).toFixed(1)}x`, ""]);
    if (raw) {
      rows.push([
        "Ratio: writer drain / raw insert (same method, the better of 1 and 2 connections)",
        `**${pct(drain.drain / raw.insert)}**`,
        "target >= 70 %",
      ]);
    }
  }
}

// 4. Message routes' cost, each run with fresh services (the ones above are stopped).
if (selection.routes) rows.push(...(await routesPhase(work, executable, Math.min(seconds, 30), CONNECTIONS, step)));

// 5. The peers, each fresh, after the services above are stopped.
const peers = selection.peers.size
  ? await peersPhase(work, executable, selection.peers, peerReadings, singleSeconds, step)
  : [];

const cpu = cpus();
const load1 = loadavg();
const phases = [
  ...(selection.raw ? ["raw"] : []),
  ...(selection.naive ? ["naive"] : []),
  ...(selection.server ? ["server"] : []),
  ...(selection.routes ? ["routes"] : []),
  ...(selection.peers.size ? [`peers (${[...selection.peers].join(", ")})`] : []),
];
console.log(
  `\n### telemetry benchmark (${cpu.length} × ${cpu[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC)\n`,
);
console.log(
  `Phases: ${phases.join(", ")}. Load average before ${load0.map((x) => x.toFixed(2)).join(" ")}, after ${load1.map((x) => x.toFixed(2)).join(" ")}${selection.server ? `; batched phase ${seconds} s` : ""}.\n`,
);
if (rows.length) {
  console.log("| Measure | Result | Detail |\n| --- | --- | --- |");
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
}
if (peers.length) {
  console.log("\n#### Peers\n");
  console.log(peersTable(peers, peerReadings, singleSeconds));
}
