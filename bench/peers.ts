/**
 * The systems of the peers phase, each started fresh in its own temporary directory on free
 * loopback ports and removed by stop() (callers stop in `finally`; the children also get SIGTERM
 * if the bench dies, via setpriv --pdeathsig, and SIGKILL at its exit):
 *  - InfluxDB 1.x (Debian `influxdb`): a generated config with meta/data/wal under the temp dir,
 *    HTTP and RPC on free ports, reporting disabled, the HTTP request log off (the server logs no
 *    request either); everything else the package's default, the WAL fsynced on every write
 *    (wal-fsync-delay 0s). Written at /write?db=bench&precision=ms, counted by SELECT count(temp).
 *  - VictoriaMetrics (Debian `victoria-metrics`): -storageDataPath, -httpListenAddr and a retention
 *    long enough for the bench's timestamps (2026-01-01 on; the default 1 month would drop them);
 *    written at /write?precision=ms, counted by sum(count_over_time(bench_temp[…])), uncached.
 *  - the server: fresh nats-server and PostgreSQL (temp dirs) and the compiled executable, all
 *    roles in one process, fed NDJSON or line protocol (/api/v2/write); counted by the writer's
 *    committed counter.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startLocalNats } from "../src/embedded/nats-server.ts";
import { startLocalPostgres } from "../src/embedded/postgres.ts";
import { ChildProcess, findExecutable, freePort, waitFor } from "../src/embedded/process.ts";
import { BASE_TS } from "./data.ts";
import { committed, KEY, ndjsonTarget, startServer } from "./env.ts";
import type { Target } from "./load.ts";

export interface System {
  target: Target;
  /** Processes whose CPU (with their children) is the system's. */
  pids: Record<string, number>;
  /** Readings queryable now. */
  queryable(): Promise<number>;
  stop(): Promise<void>;
}

const LOCAL = "127.0.0.1";

function binary(name: string): string {
  const path = findExecutable(name, ["/usr/bin", "/usr/sbin"]);
  if (!path) throw new Error(`${name} not found: scripts/setup.sh --bench installs it (npm run bench runs that)`);
  return path;
}

async function spawnPeer(cmd: string[], cwd: string, ready: string, what: string): Promise<ChildProcess> {
  const child = new ChildProcess({ cmd, cwd, parentDeathSignal: "SIGTERM" });
  try {
    await waitFor(
      async () => {
        if (!child.alive) throw new Error(`${what} exited (${child.exitStatus}):\n${child.output()}`);
        return (await fetch(ready).catch(() => null))?.ok;
      },
      { timeoutMs: 60_000, intervalMs: 200, what },
    );
  } catch (err) {
    await child.stop("SIGTERM", 10_000);
    throw err;
  }
  return child;
}

/** Runs `fn` on the started system, then stops it and removes its directory, whatever happened. */
async function guarded(
  dir: string,
  stop: () => Promise<void>,
  fn: () => Promise<Omit<System, "stop">>,
): Promise<System> {
  const cleanup = async () => {
    try {
      await stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const system = await fn();
    return { ...system, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export async function startInfluxDb(work: string): Promise<System> {
  const dir = mkdtempSync(join(work, "influxdb-"));
  const [http, rpc] = [await freePort(), await freePort()];
  const config = join(dir, "influxdb.conf");
  writeFileSync(
    config,
    [
      "reporting-disabled = true",
      `bind-address = "${LOCAL}:${rpc}"`,
      "[meta]",
      `  dir = "${join(dir, "meta")}"`,
      "[data]",
      `  dir = "${join(dir, "data")}"`,
      `  wal-dir = "${join(dir, "wal")}"`,
      '  wal-fsync-delay = "0s"',
      "[http]",
      `  bind-address = "${LOCAL}:${http}"`,
      "  log-enabled = false",
      "",
    ].join("\n"),
  );
  const url = `http://${LOCAL}:${http}`;
  let child: ChildProcess | undefined;
  return guarded(
    dir,
    async () => child?.stop("SIGTERM", 30_000),
    async () => {
      child = await spawnPeer([binary("influxd"), "-config", config], dir, `${url}/ping`, "InfluxDB ready");
      const q = (text: string) =>
        fetch(`${url}/query?db=bench`, { method: "POST", body: new URLSearchParams({ q: text }) }).then(async (r) => {
          if (!r.ok) throw new Error(`InfluxDB ${text}: ${r.status} ${await r.text()}`);
          return (await r.json()) as { results: { series?: { values: [string, number][] }[]; error?: string }[] };
        });
      await q("CREATE DATABASE bench");
      return {
        target: { url, path: "/write?db=bench&precision=ms", headers: {}, format: "lp", ok: 204 },
        pids: { influxd: child.pid },
        async queryable() {
          const res = (await q("SELECT count(temp) FROM bench")).results[0];
          if (res?.error) throw new Error(`InfluxDB count: ${res.error}`);
          return Number(res?.series?.[0]?.values[0]?.[1] ?? 0);
        },
      };
    },
  );
}

export async function startVictoriaMetrics(work: string): Promise<System> {
  const dir = mkdtempSync(join(work, "victoria-metrics-"));
  const port = await freePort();
  const url = `http://${LOCAL}:${port}`;
  let child: ChildProcess | undefined;
  return guarded(
    dir,
    async () => child?.stop("SIGTERM", 30_000),
    async () => {
      child = await spawnPeer(
        [
          binary("victoria-metrics"),
          `-storageDataPath=${join(dir, "data")}`,
          `-httpListenAddr=${LOCAL}:${port}`,
          "-retentionPeriod=100y",
        ],
        dir,
        `${url}/health`,
        "VictoriaMetrics ready",
      );
      return {
        target: { url, path: "/write?precision=ms", headers: {}, format: "lp", ok: 204 },
        pids: { "victoria-metrics": child.pid },
        async queryable() {
          const now = Date.now();
          const days = Math.ceil((now - BASE_TS) / 86_400_000) + 1;
          const query = `sum(count_over_time(bench_temp[${days}d]))`;
          const params = new URLSearchParams({ query, time: String(now / 1000), nocache: "1" });
          const r = await fetch(`${url}/api/v1/query?${params}`);
          if (!r.ok) throw new Error(`VictoriaMetrics count: ${r.status} ${await r.text()}`);
          const body = (await r.json()) as { data: { result: { value: [number, string] }[] } };
          return Number(body.data.result[0]?.value[1] ?? 0);
        },
      };
    },
  );
}

/** The server's line-protocol endpoint (InfluxDB 2 API) with the bench's key as a Token. */
export const lpTarget = (url: string): Target => ({
  url,
  path: "/api/v2/write?org=o&bucket=b&precision=ms",
  headers: { authorization: `Token ${KEY}` },
  format: "lp",
  ok: 204,
});

/** Fresh nats-server, PostgreSQL and server; the server fed `format`. */
export async function startTelemetry(work: string, executable: string, format: "ndjson" | "lp"): Promise<System> {
  const dir = mkdtempSync(join(work, `telemetry-${format}-`));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when the bench runs as root
  mkdirSync(join(dir, "data"));
  const stops: (() => Promise<void>)[] = [];
  return guarded(
    dir,
    async () => {
      for (const stop of stops.reverse()) await stop();
    },
    async () => {
      const nats = await startLocalNats({ storeDir: join(dir, "nats") });
      stops.push(() => nats.stop());
      const pg = await startLocalPostgres({ dataDir: join(dir, "pg") });
      stops.push(() => pg.stop());
      const server = await startServer(executable, {
        NATS_URL: nats.url,
        DATABASE_URL: pg.url,
        TELEMETRY_DATA_DIR: join(dir, "data"),
      });
      stops.push(() => server.stop());
      return {
        target: format === "lp" ? lpTarget(server.url) : ndjsonTarget(server.url),
        pids: { server: server.pid, "nats-server": nats.pid!, PostgreSQL: pg.pid! },
        queryable: () => committed(server.url),
      };
    },
  );
}
