/**
 * Fault-injection harness: the server under test runs as separate child processes started from
 * source (so they can be SIGKILLed / SIGTERMed), plus probes of PostgreSQL, JetStream and /proc.
 * Every child is tracked; stopAll() (call it from afterAll) kills whatever is still running.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createSql, type Sql } from "../../src/db/client.ts";
import { ChildProcess, freePort, waitFor } from "../../src/embedded/process.ts";
import { BASE_TS } from "../helpers/data.ts";

export { loadClients, type LoadHandle, type LoadSummary, type Sent } from "./load.ts";

export const TENANT = "fault";
export const KEY = "fault-key-0123456789abcdef";
const ROOT = resolve(import.meta.dir, "../..");
const MAX_LOG_LINES = 5_000;
/** These tests are about durability, not quotas: per-tenant/device limits far above the load (unknown settings are ignored). */
const NO_RATE_LIMITS = {
  TELEMETRY_TENANT_RATE: "100000000",
  TELEMETRY_TENANT_BURST: "100000000",
  TELEMETRY_DEVICE_RATE: "100000000",
  TELEMETRY_DEVICE_BURST: "100000000",
  TELEMETRY_MAX_DEVICES: "100000000",
};

export interface ServerProcess {
  readonly name: string;
  readonly roles: string;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Every line the process wrote (JSON log lines at LOG_LEVEL), newest last, capped. */
  readonly lines: string[];
}

const children = new Set<ChildProcess>();
const dataDirs = new Set<string>();
let spawned = 0;

export type WaitFor = "ready" | "health";

/**
 * Starts `telemetry serve` from source with `roles` and waits until GET /ready answers 200
 * ("ready") or, for a process whose dependencies may be down, until GET /health does ("health":
 * HTTP is served only after every role, the writer included, has started).
 */
export async function spawnServer(
  env: Record<string, string>,
  roles: string,
  opts: { wait?: WaitFor; port?: number; name?: string } = {},
): Promise<ServerProcess> {
  // A free port can be taken by another process before the server binds it (other tests on the
  // machine): with a port of our own choosing, pick another and start again (at most 3 times).
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(env, roles, opts, opts.port ?? (await freePort()));
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3 || !/Is port \d+ in use/.test(String(err))) throw err;
    }
  }
}

async function spawnOnce(
  env: Record<string, string>,
  roles: string,
  opts: { wait?: WaitFor; name?: string },
  port: number,
): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "telemetry-fault-"));
  dataDirs.add(dataDir);
  const lines: string[] = [];
  const child = new ChildProcess({
    cmd: [process.execPath, "src/cli/main.ts", "serve"],
    cwd: ROOT,
    parentDeathSignal: "SIGKILL",
    env: {
      PATH: process.env.PATH,
      HOST: "127.0.0.1",
      PORT: String(port),
      TELEMETRY_API_KEYS: `${TENANT}:${KEY}`,
      TELEMETRY_DATA_DIR: dataDir,
      TELEMETRY_ROLES: roles,
      LOG_LEVEL: "warn",
      ...NO_RATE_LIMITS,
      ...env,
    },
    onLine: (line) => {
      lines.push(line);
      if (lines.length > MAX_LOG_LINES) lines.shift();
    },
  });
  children.add(child);
  void child.exited.then(() => children.delete(child));
  const name = opts.name ?? `${roles}#${++spawned}`;
  const server: ServerProcess = { name, roles, url: `http://127.0.0.1:${port}`, port, pid: child.pid, child, lines };
  const died = new AbortController();
  void child.exited.then(() =>
    died.abort(new Error(`${name} exited during startup (${child.exitStatus})\n${child.output()}`)),
  );
  const path = opts.wait === "health" ? "/health" : "/ready";
  await waitFor(async () => (await fetch(`${server.url}${path}`).catch(() => null))?.status === 200, {
    timeoutMs: 60_000,
    intervalMs: 50,
    what: `${name} ${path} 200`,
    signal: died.signal,
  });
  return server;
}

/** SIGKILL (the whole process group), and wait until it is gone. */
export async function kill9(server: ServerProcess): Promise<void> {
  await server.child.kill();
}

/** Kills every child still running and removes their data dirs; for afterAll. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => c.kill()));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  dataDirs.clear();
}

/** The last `n` lines of every process spawned so far that is still known, for failure reports. */
export function logTail(servers: ServerProcess[], n = 15): string {
  return servers
    .map(
      (s) =>
        `--- ${s.name} (pid ${s.pid}, ${s.child.alive ? "running" : s.child.exitStatus}) ---\n${s.lines.slice(-n).join("\n")}`,
    )
    .join("\n");
}

/** Record `i` of a run: distinct for every i (its own timestamp); `run` consecutive records share a device. */
export function faultRecord(i: number, devices: number, run = 1): string {
  const device = `dev-${Math.floor(i / run) % devices}`;
  const loc = i % 3 === 0 ? `,"location":{"lat":${52.5 + (i % 1000) / 1e5},"lon":${13.4 - (i % 500) / 1e5}}` : "";
  return `{"device_id":"${device}","ts":${BASE_TS + i * 1000}${loc},"metrics":{"temp":${20 + (i % 17) / 10},"seq":${i}}}`;
}

export interface RowStats {
  rows: number;
  distinct: number;
}

/** A small client of the database under test: counts, and the writer's backends. */
export class Db implements AsyncDisposable {
  private readonly sql: Sql;

  constructor(url: string) {
    this.sql = createSql(url, { max: 2, name: "fault-probe" });
  }

  async stats(): Promise<RowStats> {
    const [r] = await this.sql`SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS distinct FROM readings`;
    return { rows: r!.rows as number, distinct: r!.distinct as number };
  }

  async rows(): Promise<number> {
    const [r] = await this.sql`SELECT count(*)::int AS n FROM readings`;
    return r!.n as number;
  }

  /** Indexes 0..n-1 of faultRecord() readings (metric `seq`) with no row. */
  async missingSeqs(n: number): Promise<number[]> {
    const rows = await this.sql`SELECT i FROM generate_series(0, ${n - 1}::int) AS i
      EXCEPT SELECT (metrics->>'seq')::int FROM readings ORDER BY 1`;
    return rows.map((r) => r.i as number);
  }

  async quarantined(): Promise<number> {
    const [r] = await this.sql`SELECT count(*)::int AS n FROM quarantine`;
    return r!.n as number;
  }

  /** How many of these event ids have a row. */
  async present(eventIds: string[]): Promise<number> {
    const [r] = await this.sql`SELECT count(*)::int AS n FROM readings WHERE event_id = ANY(${eventIds}::uuid[])`;
    return r!.n as number;
  }

  /**
   * Backends of a writer pool (application_name telemetry-<roles joined by +>) in the middle of a
   * batch: running the readings INSERT, or holding the batch's transaction open between statements.
   */
  async busyWriterBackends(): Promise<number[]> {
    const rows = await this.sql`SELECT pid FROM pg_stat_activity
      WHERE application_name LIKE 'telemetry-%writer%' AND pid <> pg_backend_pid()
        AND ((state = 'active' AND query LIKE '%INSERT INTO readings%') OR state LIKE 'idle in transaction%')`;
    return rows.map((r) => r.pid as number);
  }

  async terminate(pids: number[]): Promise<number> {
    const rows = await this.sql`SELECT pg_terminate_backend(pid) AS ok FROM unnest(${pids}::int[]) AS pid`;
    return rows.filter((r) => r.ok).length;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.sql.end({ timeout: 1 });
  }
}

/** Messages of the writer's durable consumer not yet acked: num_pending + num_ack_pending. `natsUrl` may list several servers (comma-separated). */
export async function consumerPending(
  natsUrl: string,
  stream = "TELEMETRY",
  durable = "writer",
): Promise<{ pending: number; ackPending: number }> {
  const nc = await connect({ servers: natsUrl.split(","), reconnect: false, timeout: 2_000 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    const info = await jsm.consumers.info(stream, durable);
    return { pending: info.num_pending, ackPending: info.num_ack_pending };
  } finally {
    await nc.close();
  }
}

/**
 * Waits until the database holds `readings` rows (up to 180 s), then until the writer's consumer
 * has nothing pending or unacked (up to 30 s); returns the last row stats and consumer counts.
 */
export async function settled(db: Db, natsUrl: string, readings: number) {
  const final = await waitFor(
    async () => {
      const s = await db.stats();
      return s.rows >= readings && s;
    },
    { timeoutMs: 180_000, intervalMs: 250, what: `${readings} rows` },
  );
  const pending = await waitFor(
    async () => {
      const p = await consumerPending(natsUrl);
      return p.pending + p.ackPending === 0 && p;
    },
    { timeoutMs: 30_000, intervalMs: 250, what: "writer consumer drained" },
  );
  return { final, pending };
}

/** Resident set size of a pid in MiB (VmRSS), or undefined when it is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const now = () => performance.now();
export const seconds = (fromMs: number) => Math.round((now() - fromMs) / 100) / 10;

/** One line per test with its figures, prefixed FAULT so a CI log can be grepped. */
export function report(test: string, figures: Record<string, string | number | boolean>): void {
  console.log(
    `FAULT ${test} ${Object.entries(figures)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
  );
}
