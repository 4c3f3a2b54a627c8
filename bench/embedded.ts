/**
 * The embedded database's limits, measured through the whole server: `bun bench/embedded.ts [N]`
 * starts `telemetry serve` with TELEMETRY_DATABASE=embedded in a temp data dir, posts N readings
 * (default 100k) as NDJSON in requests of 1000 from 4 concurrent clients, and reports the time
 * until the writer has inserted them all (readings/s), the server's peak RSS (sampled every
 * 250 ms) and the size of <data dir>/pglite. Bounded: gives up after 30 minutes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../src/embedded/process.ts";

const N = Number(process.argv[2] ?? 100_000);
const PER_REQUEST = 1000;
const CLIENTS = 4;
const DEVICES = 100;
const KEY = "bench-key-0123456789abcdef";
const root = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "telemetry-bench-embedded-"));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const proc = Bun.spawn({
  cmd: [process.execPath, "src/cli/main.ts", "serve"],
  cwd: root,
  env: {
    PATH: process.env.PATH!,
    TELEMETRY_DATA_DIR: join(dir, "data"),
    TELEMETRY_DATABASE: "embedded",
    PORT: String(port),
    HOST: "127.0.0.1",
    TELEMETRY_NATS_PORT: "0",
    TELEMETRY_API_KEYS: `bench:${KEY}`,
    TELEMETRY_TENANT_RATE: "10000000",
    TELEMETRY_TENANT_BURST: "10000000",
    TELEMETRY_DEVICE_RATE: "10000000",
    TELEMETRY_DEVICE_BURST: "10000000",
    LOG_LEVEL: "warn",
  },
  stdout: "inherit",
  stderr: "inherit",
});
const deadline = Date.now() + 30 * 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssMiB = async () => {
  const status = await Bun.file(`/proc/${proc.pid}/status`)
    .text()
    .catch(() => "");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
};
const inserted = async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/telemetry_writer_readings_total\{result="inserted"\} (\d+)/.exec(text)?.[1] ?? 0);
};
try {
  while ((await fetch(`${base}/ready`).catch(() => null))?.status !== 200) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error("server did not get ready");
    await sleep(200);
  }
  const idleRssMiB = Math.round(await rssMiB());
  const emptyBytes = Number(
    Bun.spawnSync({ cmd: ["du", "-sb", join(dir, "data", "pglite")] })
      .stdout.toString()
      .split("\t")[0],
  );
  let peak = idleRssMiB;
  const sampler = setInterval(async () => (peak = Math.max(peak, await rssMiB())), 250);
  const t0 = Date.now() - 1;
  const start = performance.now();
  let next = 0;
  const client = async () => {
    for (;;) {
      const from = next;
      next += PER_REQUEST;
      if (from >= N || Date.now() > deadline) return;
      const body = Array.from({ length: Math.min(PER_REQUEST, N - from) }, (_, k) => {
        const i = from + k;
        return JSON.stringify({
          device_id: `d-${i % DEVICES}`,
          ts: t0 - N + i,
          metrics: { temp: 20 + (i % 100) / 10, rssi: -60 - (i % 7) },
        });
      }).join("\n");
      const res = await fetch(`${base}/api/v1/telemetry`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/x-ndjson" },
        body,
      });
      if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
    }
  };
  // One single-record POST every 100 ms meanwhile: how long ingest waits while PGlite holds the event loop.
  const latencies: number[] = [];
  let probing = true;
  const probe = (async () => {
    for (let i = 0; probing; i++) {
      const t = performance.now();
      await fetch(`${base}/api/v1/telemetry`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ device_id: "probe", ts: t0 - N - 1_000_000 + i, metrics: { v: i } }),
      });
      latencies.push(performance.now() - t);
      await sleep(100);
    }
  })();
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const posted = (performance.now() - start) / 1000;
  let done = 0;
  let lastLog = 0;
  for (;;) {
    done = await inserted();
    if (probing && done >= N) {
      probing = false;
      await probe;
    }
    if (!probing && done >= N + latencies.length) break;
    if (Date.now() > deadline) throw new Error(`timed out with ${done} of ${N} inserted`);
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      console.error(`  ${done} inserted, rss ${Math.round(peak)} MiB`);
    }
    await sleep(50);
  }
  const total = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!);
  clearInterval(sampler);
  const metricsText = await (await fetch(`${base}/metrics`)).text();
  const flush = (what: string) =>
    Number(new RegExp(`telemetry_writer_flush_seconds_${what} ([\\d.e+-]+)`).exec(metricsText)?.[1] ?? 0);
  const du = Bun.spawnSync({ cmd: ["du", "-sb", join(dir, "data", "pglite")] })
    .stdout.toString()
    .split("\t")[0];
  console.log(
    JSON.stringify({
      readings: N,
      postedSeconds: +posted.toFixed(1),
      allInsertedSeconds: +total.toFixed(1),
      readingsPerSecond: Math.round(N / total),
      meanFlushMs: +((flush("sum") / flush("count")) * 1000).toFixed(1),
      probePostMs: { p50: pct(0.5), p99: pct(0.99), max: pct(1) },
      idleRssMiB,
      peakRssMiB: Math.round(peak),
      rssAtEndMiB: Math.round(await rssMiB()),
      emptyPgliteBytes: emptyBytes,
      pgliteBytes: Number(du),
      bytesPerReading: Math.round((Number(du) - emptyBytes) / N),
    }),
  );
} finally {
  proc.kill("SIGTERM");
  await proc.exited;
  rmSync(dir, { recursive: true, force: true });
}
