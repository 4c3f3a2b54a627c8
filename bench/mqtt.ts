/**
 * MQTT readings per second through the whole server: `bun bench/mqtt.ts [N] [DEVICES] [INFLIGHT]`
 * starts `telemetry serve` (from source, all roles, MQTT on, its own nats-server and database) in
 * a temp data dir, creates a key with `telemetry keys create`, and has Debian's python3-paho-mqtt
 * (bench/mqtt_publish.py) publish N readings (default 100,000) at QoS 1 over DEVICES device topics
 * (default 100) with up to INFLIGHT (default 200) unacknowledged. Reports publishes/s until every
 * PUBACK (nats-server acks once the message is in the MQTT stream) and readings/s until the writer
 * has inserted them all (the bridge's validation, policy, plan and publish included). Bounded: gives
 * up after 10 minutes.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../src/embedded/process.ts";

const N = Number(process.argv[2] ?? 100_000);
const DEVICES = Number(process.argv[3] ?? 100);
const INFLIGHT = Number(process.argv[4] ?? 200);
const root = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "telemetry-bench-mqtt-"));
chmodSync(dir, 0o755); // the postgres OS user (when run as root) reaches its data dir inside
const [port, mqttPort] = [await freePort(), await freePort()];
const base = `http://127.0.0.1:${port}`;
const env = {
  PATH: process.env.PATH!,
  TELEMETRY_DATA_DIR: join(dir, "data"),
  PORT: String(port),
  HOST: "127.0.0.1",
  TELEMETRY_NATS_PORT: "0",
  TELEMETRY_MQTT_PORT: String(mqttPort),
  TELEMETRY_MQTT_HOST: "127.0.0.1",
  TELEMETRY_API_KEYS: "bench:bench-key-0123456789abcdef",
  TELEMETRY_TENANT_RATE: "10000000",
  TELEMETRY_TENANT_BURST: "10000000",
  TELEMETRY_DEVICE_RATE: "10000000",
  TELEMETRY_DEVICE_BURST: "10000000",
  TELEMETRY_MAX_FUTURE: "3650d",
  LOG_LEVEL: "warn",
};
const proc = Bun.spawn({
  cmd: [process.execPath, "src/cli/main.ts", "serve"],
  cwd: root,
  env,
  stdout: "inherit",
  stderr: "inherit",
});
const deadline = Date.now() + 10 * 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const inserted = async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/telemetry_writer_readings_total\{result="inserted"\} (\d+)/.exec(text)?.[1] ?? 0);
};
const publish = (count: number, tsBase: number) => {
  const r = Bun.spawnSync({
    cmd: [
      "/usr/bin/python3",
      join(root, "bench/mqtt_publish.py"),
      "127.0.0.1",
      String(mqttPort),
      key.user,
      key.key,
      "bench",
      String(DEVICES),
      String(count),
      String(INFLIGHT),
      String(tsBase),
    ],
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`paho: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString()) as { acked: number; seconds: number };
};
let key = { user: "", key: "" };
try {
  while ((await fetch(`${base}/ready`).catch(() => null))?.status !== 200) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error("server did not get ready");
    await sleep(200);
  }
  const made = Bun.spawnSync({
    cmd: [process.execPath, "src/cli/main.ts", "keys", "create", "bench", "--json"],
    cwd: root,
    env,
  });
  const created = JSON.parse(made.stdout.toString());
  key = { user: created.prefix, key: created.key };
  // Warm-up: nats-server has the new user (key sync), the devices exist.
  while (Date.now() < deadline) {
    try {
      publish(DEVICES, Date.UTC(2025, 0, 1));
      break;
    } catch {
      await sleep(500);
    }
  }
  while ((await inserted()) < DEVICES) await sleep(100);
  const start = performance.now();
  const run = publish(N, Date.UTC(2026, 0, 1));
  while ((await inserted()) < N + DEVICES && Date.now() < deadline) await sleep(50);
  const storedS = (performance.now() - start) / 1000;
  console.log(
    JSON.stringify({
      protocol: "mqtt",
      readings: N,
      devices: DEVICES,
      inflight: INFLIGHT,
      publishes_per_s: Math.round(N / run.seconds),
      stored_readings_per_s: Math.round(N / storedS),
      seconds: Math.round(storedS * 10) / 10,
    }),
  );
} finally {
  proc.kill("SIGTERM");
  await proc.exited;
  rmSync(dir, { recursive: true, force: true });
}
