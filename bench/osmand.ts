/**
 * OsmAnd requests per second through the whole server: `bun bench/osmand.ts [N] [CLIENTS]` starts
 * `telemetry serve` (from source, all roles, its own nats-server and database) in a temp data dir,
 * sends N OsmAnd GET requests (default 20,000; one reading each, Traccar's query form, 100 devices)
 * from CLIENTS concurrent clients (default 16), and reports requests/s until every one was
 * answered 200 (each answer waits for JetStream's ack) and readings/s until the writer has
 * inserted them all. `BENCH_FORM=json` sends the same readings as one-record JSON requests to
 * /api/v1/telemetry instead, for comparison on the same machine. Bounded: gives up after 10 minutes.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../src/embedded/process.ts";

const N = Number(process.argv[2] ?? 20_000);
const CLIENTS = Number(process.argv[3] ?? 16);
const DEVICES = 100;
const KEY = "bench-key-0123456789abcdef";
const T0 = Date.UTC(2026, 0, 1) / 1000;
const dir = mkdtempSync(join(tmpdir(), "telemetry-bench-osmand-"));
chmodSync(dir, 0o755); // the postgres OS user (when run as root) reaches its data dir inside
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const proc = Bun.spawn({
  cmd: [process.execPath, "src/cli/main.ts", "serve"],
  cwd: join(import.meta.dir, ".."),
  env: {
    PATH: process.env.PATH!,
    TELEMETRY_DATA_DIR: join(dir, "data"),
    PORT: String(port),
    HOST: "127.0.0.1",
    TELEMETRY_NATS_PORT: "0",
    TELEMETRY_API_KEYS: `bench:${KEY}`,
    TELEMETRY_TENANT_RATE: "10000000",
    TELEMETRY_TENANT_BURST: "10000000",
    TELEMETRY_DEVICE_RATE: "10000000",
    TELEMETRY_DEVICE_BURST: "10000000",
    TELEMETRY_MAX_FUTURE: "3650d",
    LOG_LEVEL: "warn",
  },
  stdout: "inherit",
  stderr: "inherit",
});
const deadline = Date.now() + 10 * 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const inserted = async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/telemetry_writer_readings_total\{result="inserted"\} (\d+)/.exec(text)?.[1] ?? 0);
};
const JSON_FORM = process.env.BENCH_FORM === "json";
const send = (i: number) =>
  JSON_FORM
    ? fetch(`${base}/api/v1/telemetry`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({
          device_id: `dev-${i % DEVICES}`,
          ts: (T0 + i) * 1000,
          location: { lat: Number((52.5 + (i % 1000) / 1e5).toFixed(5)), lon: 13.4 },
          metrics: { hdop: 1.1, altitude: 35, speed: (i % 40) * 1.852, battery: 80 },
        }),
      })
    : fetch(url(i));
const url = (i: number) =>
  `${base}/osmand/${KEY}?id=dev-${i % DEVICES}&lat=${(52.5 + (i % 1000) / 1e5).toFixed(5)}&lon=13.4&timestamp=${T0 + i}&hdop=1.1&altitude=35&speed=${i % 40}&batt=80`;
try {
  while ((await fetch(`${base}/ready`).catch(() => null))?.status !== 200) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error("server did not get ready");
    await sleep(200);
  }
  // Warm-up: the devices exist and the key is cached before the clock starts.
  for (let d = 0; d < DEVICES; d++) {
    const r = await send(N + d);
    if (r.status >= 300) throw new Error(`warm-up answered ${r.status}: ${await r.text()}`);
  }
  while ((await inserted()) < DEVICES) await sleep(100);
  let next = 0;
  let failed = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < N && Date.now() < deadline) {
        const r = await send(next++);
        await r.arrayBuffer();
        if (r.status >= 300) failed++;
      }
    }),
  );
  const answeredS = (performance.now() - start) / 1000;
  while ((await inserted()) < N + DEVICES - failed && Date.now() < deadline) await sleep(50);
  const storedS = (performance.now() - start) / 1000;
  console.log(
    JSON.stringify({
      form: JSON_FORM ? "json" : "osmand",
      requests: N,
      clients: CLIENTS,
      failed,
      requests_per_s: Math.round(N / answeredS),
      stored_readings_per_s: Math.round((N - failed) / storedS),
      seconds: Math.round(storedS * 10) / 10,
    }),
  );
} finally {
  proc.kill("SIGTERM");
  await proc.exited;
  rmSync(dir, { recursive: true, force: true });
}
