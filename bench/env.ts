/** What the bench phases share: the services, the compiled server as a child process, load runs, probes. */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Sql } from "../src/db/client.ts";
import { freePort, waitFor } from "../src/embedded/process.ts";
import type { LoadResult, Target } from "./load.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const KEY = "bench-key-0123456789abcdef";

/** Builds the single executable the way `npm run build` does. */
export function buildExecutable(outfile: string): void {
  const build = Bun.spawnSync({
    cmd: [process.execPath, "build", "--compile", "--minify", "src/cli/main.ts", "--outfile", outfile],
    cwd: ROOT,
  });
  if (build.exitCode !== 0) throw new Error(build.stderr.toString());
}

export interface ServerHandle {
  url: string;
  pid: number;
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
}

/**
 * The server, all roles in one process, against the bench's nats-server and PostgreSQL: the
 * compiled executable (a path), or a checkout's source (`{ checkout }`, run by this bun).
 */
export async function startServer(
  from: string | { checkout: string },
  env: Record<string, string>,
): Promise<ServerHandle> {
  const port = await freePort();
  const proc = Bun.spawn({
    cmd:
      typeof from === "string" ? [from, "serve"] : [process.execPath, join(from.checkout, "src/cli/main.ts"), "serve"],
    cwd: typeof from === "string" ? undefined : from.checkout,
    env: {
      ...process.env,
      PORT: String(port),
      TELEMETRY_API_KEYS: `bench:${KEY}`,
      LOG_LEVEL: "warn",
      // the bench measures the pipeline, not the quotas: limits far above the load
      TELEMETRY_TENANT_RATE: "100000000",
      TELEMETRY_TENANT_BURST: "100000000",
      TELEMETRY_MAX_DEVICES: "100000000",
      ...env,
    },
    stdout: "inherit",
    stderr: "inherit",
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/ready`).catch(() => null))?.status === 200, {
    timeoutMs: 60_000,
    what: "server ready",
  });
  return {
    url,
    pid: proc.pid,
    async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM") {
      proc.kill(signal);
      await proc.exited;
    },
  };
}

/**
 * The A/B scripts' arguments: `<checkout>` or `<checkout>#NAME=value,NAME=value` — a checkout with
 * its own environment on top (a comma inside a value, as in TELEMETRY_ROLES=ingest,api, stays).
 */
export function checkoutRuns(
  args: readonly string[],
): Array<{ dir: string; env: Record<string, string>; name: string }> {
  return args.map((arg) => {
    const [dir = ".", vars = ""] = arg.split("#");
    const env = Object.fromEntries(
      vars
        .split(/,(?=[A-Za-z_][A-Za-z0-9_]*=)/)
        .filter(Boolean)
        .map((kv) => kv.split("=") as [string, string]),
    );
    return { dir: resolve(dir), env, name: `${dir.split("/").at(-1)}${vars ? `#${vars}` : ""}` };
  });
}

/** The server's NDJSON/JSON endpoint with the bench's key. */
export const ndjsonTarget = (url: string): Target => ({
  url,
  path: "/api/v1/telemetry",
  headers: { authorization: `Bearer ${KEY}` },
  format: "ndjson",
  ok: 202,
});

/** Runs bench/load.ts in its own process against a target (a URL: the server's NDJSON endpoint). */
export async function runLoad(target: string | Target, ...args: (string | number)[]): Promise<LoadResult> {
  const t = typeof target === "string" ? ndjsonTarget(target) : target;
  const p = Bun.spawn({
    cmd: [process.execPath, join(ROOT, "bench/load.ts"), JSON.stringify(t), ...args.map(String)],
    stdout: "pipe",
    stderr: "inherit",
  });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return JSON.parse(out.trim().split("\n").at(-1)!) as LoadResult;
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The fields of /proc/<pid>/stat after the command (field 3, the state, is index 0); null when gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  if (!fields) throw new Error(`no process ${pid}`);
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds of a process and all its descendants (PostgreSQL's backends): its own utime+stime,
 * its exited and reaped children's (cutime+cstime), and each live child's tree.
 */
export function treeCpuSeconds(pid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = Number(statFields(Number(entry))?.[1]);
    if (ppid) children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const tree = (p: number): number => {
    const f = statFields(p);
    if (!f) return 0;
    const own = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    return own / 100 + (children.get(p) ?? []).reduce((sum, c) => sum + tree(c), 0);
  };
  return tree(pid);
}

/**
 * CPU seconds (user, system) of a process and of each of its direct children by their title
 * (PostgreSQL's "postgres: walwriter", a backend's "postgres: <user> <db> …" shortened to its
 * role); "exited children" is what reaped children used (cutime/cstime: autovacuum workers).
 */
export function childCpuSeconds(pid: number): Map<string, { user: number; system: number }> {
  const out = new Map<string, { user: number; system: number }>();
  const add = (name: string, user: number, system: number) => {
    const v = out.get(name) ?? { user: 0, system: 0 };
    v.user += user / 100;
    v.system += system / 100;
    out.set(name, v);
  };
  const own = statFields(pid);
  if (!own) return out;
  add("postmaster", Number(own[11]), Number(own[12]));
  add("exited children", Number(own[13]), Number(own[14]));
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (Number(f?.[1]) !== pid || !f) continue;
    let title = "";
    try {
      title = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
    } catch {}
    const name =
      /^postgres: (checkpointer|background writer|walwriter|autovacuum|logical replication|archiver|stats)/.exec(
        title,
      )?.[1] ?? "backends";
    add(name, Number(f[11]) + Number(f[13]), Number(f[12]) + Number(f[14]));
  }
  return out;
}

export async function rowCount(sql: Sql): Promise<number> {
  return Number((await sql`SELECT count(*)::bigint AS n FROM readings`)[0]!.n);
}

/** Readings the server's writer has committed (its /metrics counter; cheaper to poll than count(*)). */
export async function committed(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^telemetry_writer_readings_total\{result="inserted"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * Waits until the writer has committed `target` readings (its counter); returns when the last of
 * them was seen (polled every 200 ms) and when the first of them was.
 */
export async function waitForCommitted(
  url: string,
  target: number,
  timeoutMs = 900_000,
): Promise<{ doneAt: number; firstAt: number }> {
  const start = await committed(url);
  let firstAt = NaN;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const n = await committed(url).catch(() => start);
    if (n > start && Number.isNaN(firstAt)) firstAt = performance.now();
    if (n >= target) return { doneAt: performance.now(), firstAt };
    if (performance.now() > deadline)
      throw new Error(`only ${n} of ${target} readings committed after ${timeoutMs} ms`);
    await Bun.sleep(200);
  }
}

export const fmt = (n: number) => Math.round(n).toLocaleString("en");
export const pct = (x: number) => `${Math.round(x * 100)} %`;

/**
 * Seconds a process's threads have waited on a run queue (runnable, not running) so far, from
 * /proc/<pid>/task/<tid>/schedstat; `main` = the main thread (the event loop) only.
 */
export function runQueueSeconds(pid: number, main = false): number {
  const wait = (path: string) => Number(readFileSync(path, "utf8").split(" ")[1] ?? 0) / 1e9;
  try {
    if (main) return wait(`/proc/${pid}/task/${pid}/schedstat`);
    return readdirSync(`/proc/${pid}/task`).reduce((sum, t) => sum + wait(`/proc/${pid}/task/${t}/schedstat`), 0);
  } catch {
    return Number.NaN;
  }
}
