/**
 * CPU profile of the server (from source, all roles in one process) under one load of
 * bench/load.ts, to see where the time goes:
 *   bun bench/profile.ts [batch|single] [seconds] [connections or rate]
 * Writes Bun's markdown CPU profile (--cpu-prof-md) to $PROFILE_DIR (default /tmp/telemetry-profiles)
 * and prints its path, with the CPU seconds the server and nats-server used.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNats } from "../src/embedded/nats-server.ts";
import { startLocalPostgres } from "../src/embedded/postgres.ts";
import { freePort, waitFor } from "../src/embedded/process.ts";
import { configureLogger } from "../src/lib/log.ts";
import { cpuSeconds, KEY, ROOT, runLoad } from "./env.ts";

configureLogger("warn", true);
const [mode = "batch", secondsArg = "20", arg = mode === "batch" ? "8" : "2500"] = process.argv.slice(2);
const work = mkdtempSync(join(tmpdir(), "telemetry-profile-"));
chmodSync(work, 0o755);
const out = process.env.PROFILE_DIR ?? join(tmpdir(), "telemetry-profiles");
mkdirSync(out, { recursive: true });
await using nats = await startLocalNats({ storeDir: join(work, "nats") });
await using pg = await startLocalPostgres({ dataDir: join(work, "pg") });
const port = await freePort();
const server = Bun.spawn({
  cmd: [
    process.execPath,
    "--cpu-prof-md",
    `--cpu-prof-dir=${out}`,
    `--cpu-prof-name=server-${mode}-${Date.now()}.md`,
    "src/cli/main.ts",
    "serve",
  ],
  cwd: ROOT,
  env: {
    ...process.env,
    PORT: String(port),
    NATS_URL: nats.url,
    DATABASE_URL: pg.url,
    TELEMETRY_API_KEYS: `bench:${KEY}`,
    TELEMETRY_DATA_DIR: join(work, "data"),
    LOG_LEVEL: "warn",
    TELEMETRY_TENANT_RATE: "100000000",
    TELEMETRY_TENANT_BURST: "100000000",
    TELEMETRY_MAX_DEVICES: "100000000",
  },
  stdout: "inherit",
  stderr: "inherit",
});
const url = `http://127.0.0.1:${port}`;
await waitFor(async () => (await fetch(`${url}/ready`).catch(() => null))?.status === 200, {
  timeoutMs: 60_000,
  what: "server ready",
});
const cpu0 = cpuSeconds(server.pid);
const nats0 = cpuSeconds(nats.pid!);
const result = await runLoad(url, mode, `prof${Date.now()}`, Number(secondsArg), Number(arg));
await Bun.sleep(2_000);
console.log(JSON.stringify(result));
console.log(
  `server CPU ${(cpuSeconds(server.pid) - cpu0).toFixed(1)} s, nats-server CPU ${(cpuSeconds(nats.pid!) - nats0).toFixed(1)} s over ${result.elapsed.toFixed(1)} s`,
);
server.kill("SIGTERM");
await server.exited;
console.log(
  readdirSync(out)
    .filter((f) => f.includes(mode))
    .sort()
    .map((f) => join(out, f))
    .at(-1),
);
