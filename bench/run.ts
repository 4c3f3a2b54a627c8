/**
 * `bun run bench`: starts nats-server and PostgreSQL (temp dirs), runs the compiled executable
 * against them as a separate process, drives it with bench/load.ts from another process, and
 * prints a markdown table. BENCH_SECONDS (default 30) sets the length of each load phase.
 */
import { mkdtempSync, rmSync, chmodSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createSql } from "../src/db/client.ts";
import { startLocalNats } from "../src/embedded/nats-server.ts";
import { startLocalPostgres } from "../src/embedded/postgres.ts";
import { freePort, waitFor } from "../src/embedded/process.ts";
import { configureLogger } from "../src/lib/log.ts";

configureLogger("warn", true);
const root = resolve(import.meta.dir, "..");
const seconds = Number(process.env.BENCH_SECONDS ?? 30);
const work = mkdtempSync(join(tmpdir(), "telemetry-bench-"));
chmodSync(work, 0o755);
const KEY = "bench-key-0123456789abcdef";
const rows: string[][] = [];

const build = Bun.spawnSync({ cmd: [process.execPath, "build", "--compile", "--minify", "src/cli/main.ts", "--outfile", join(work, "telemetry")], cwd: root });
if (build.exitCode !== 0) throw new Error(build.stderr.toString());

await using nats = await startLocalNats({ storeDir: join(work, "nats") });
await using pg = await startLocalPostgres({ dataDir: join(work, "pg") });
const sql = createSql(pg.url, { max: 1, name: "bench" });
const port = await freePort();
const server = Bun.spawn({
  cmd: [join(work, "telemetry"), "serve"],
  env: { ...process.env, PORT: String(port), NATS_URL: nats.url, DATABASE_URL: pg.url, TELEMETRY_API_KEYS: `bench:${KEY}`, TELEMETRY_MAX_DEVICES: "1000000", TELEMETRY_DATA_DIR: join(work, "data"), LOG_LEVEL: "warn" },
  stdout: "inherit",
  stderr: "inherit",
});
const base = `http://127.0.0.1:${port}`;

try {
  await waitFor(async () => (await fetch(`${base}/ready`).catch(() => null))?.status === 200, { timeoutMs: 60_000, what: "server ready" });
  const count = async () => Number((await sql`SELECT count(*)::bigint AS n FROM readings`)[0]!.n);
  const load = async (...args: (string | number)[]) => {
    const p = Bun.spawn({ cmd: [process.execPath, join(root, "bench/load.ts"), base, KEY, ...args.map(String)], stdout: "pipe" });
    const out = await new Response(p.stdout).text();
    await p.exited;
    return JSON.parse(out.trim().split("\n").at(-1)!) as { requests: number; statuses: Record<string, number>; accepted: number; elapsed: number; p50: number; p90: number; p99: number; max: number };
  };

  // 1. Batched end to end: accepted with 202 and committed.
  const before = await count();
  const t0 = performance.now();
  const batch = await load("batch", seconds, 8, 250, 2_000, "b");
  const expected = before + batch.accepted;
  await waitFor(async () => (await count()) >= expected, { timeoutMs: 600_000, intervalMs: 100, what: "writer to commit everything" });
  const drained = (performance.now() - t0) / 1000;
  rows.push(["Batched NDJSON, 250 records/request, 8 connections: accepted (202)", `${Math.round(batch.accepted / batch.elapsed).toLocaleString("en")} readings/s`, `${batch.requests} requests, p50 ${batch.p50} ms, p99 ${batch.p99} ms`]);
  rows.push(["  ... end to end (accepted and committed in PostgreSQL)", `${Math.round(batch.accepted / drained).toLocaleString("en")} readings/s`, `${batch.accepted.toLocaleString("en")} readings, last commit ${drained.toFixed(1)} s after start`]);

  // 2. Single-record requests at a fixed rate.
  for (const rate of [1_000, 5_000]) {
    const single = await load("single", Math.min(seconds, 20), rate, 5_000, `s${rate}`);
    const ok = single.statuses["202"] ?? 0;
    rows.push([`Single-record POST at a fixed ${rate.toLocaleString("en")} req/s`, `p50 ${single.p50} ms, p99 ${single.p99} ms`, `${ok}/${single.requests} answered 202, max ${single.max} ms`]);
  }
} finally {
  server.kill("SIGTERM");
  await server.exited;
  await sql.end();
}

const cpu = cpus();
console.log(`\n### telemetry benchmark (${cpu.length} × ${cpu[0]?.model.trim()}, ${new Date().toISOString().slice(0, 10)}, ${seconds} s phases)\n`);
console.log("| Measure | Result | Detail |\n| --- | --- | --- |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
rmSync(work, { recursive: true, force: true });
