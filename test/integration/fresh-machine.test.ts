/**
 * The fresh-machine test (issue 14): the compiled executable ALONE in an empty directory, run where
 * neither nats-server nor PostgreSQL's server binaries are reachable. PATH is a directory of a few
 * basic tools (sh, cat, ls, env, setpriv); TELEMETRY_POSTGRES_BIN_DIR=none points the PostgreSQL
 * search away from its fixed fallback (/usr/lib/postgresql/<version>/bin, installed on this
 * machine); nats-server is never searched for: the executable carries its own and extracts it into
 * its data dir. Otherwise zero config (ports aside: other tests share the machine). It takes
 * readings, gives them back from the API, keeps them across a restart, and stops on SIGTERM with
 * exit 0 and no process left whose executable lies inside the test's directory.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SETTINGS } from "../../src/config/schema.ts";
import { freePort, signalPid } from "../../src/embedded/process.ts";
import { builtExecutable } from "../helpers/executable.ts";
import { check, freshDatabase } from "../helpers/services.ts";

/**
 * THE NO-POSTGRESQL PART. With the embedded database of issue 14's second half (the setting
 * TELEMETRY_DATABASE; PGlite in-process when no PostgreSQL binaries are found) the executable needs
 * no database at all, and this test runs with zero config. Until that lands, it gets a test
 * PostgreSQL by DATABASE_URL (a server this test process starts; the executable's own search
 * cannot reach any binaries), and the test "no DATABASE_URL" below checks that it then stops,
 * saying so. When the embedded database lands, drop this switch: `embeddedDatabase` is always true.
 * The join: its `auto` choice must ask `locatePostgresBinDir(config.postgresBinDir)` (undefined =
 * no binaries), so that TELEMETRY_POSTGRES_BIN_DIR=none counts as a machine without PostgreSQL.
 * Tried on 2026-12-01 with branch pglite14 (baa5b5a) merged and that one change: this file passed
 * with zero config, no database at all.
 */
const embeddedDatabase = Object.values(SETTINGS).some((s): boolean => (s.env as string) === "TELEMETRY_DATABASE");

let root: string;
let app: string;
let exe: string;
let env: Record<string, string>;
let base: string;
let key: string;
const posted: Array<{ device_id: string; ts: string; metrics: { v: number } }> = [];

/** Symlinks to a few basic tools, and nothing else. */
function basicTools(dir: string): string {
  mkdirSync(dir);
  for (const tool of ["sh", "cat", "ls", "env", "setpriv"]) {
    const found = Bun.which(tool);
    if (found) symlinkSync(found, join(dir, tool));
  }
  return dir;
}

/** Processes whose executable lies inside `dir` (the executable itself, the nats-server it extracted, anything they started from there). */
function processesIn(dir: string): Array<{ pid: number; exe: string }> {
  const found: Array<{ pid: number; exe: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const target = readlinkSync(`/proc/${entry}/exe`);
      if (target.startsWith(`${dir}/`)) found.push({ pid: Number(entry), exe: target });
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

interface Server {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  output: () => string;
  /** Settles once both output streams have ended (the process has exited and its last lines are read). */
  drained: Promise<unknown>;
  readyMs: number;
}

async function start(cwd: string, extraEnv: Record<string, string> = env): Promise<Server> {
  const t0 = performance.now();
  const proc = Bun.spawn({ cmd: [exe, "serve"], cwd, env: extraEnv, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let text = "";
  const decoder = new TextDecoder();
  const drained = Promise.all(
    [proc.stdout, proc.stderr].map(async (stream) => {
      for await (const chunk of stream) text += decoder.decode(chunk);
    }),
  );
  const exited = proc.exited.then((code) =>
    Promise.reject(new Error(`serve exited (${code}) before ready:\n${text.slice(-3000)}`)),
  );
  const ready = check(async () => (await fetch(`${base}/ready`).catch(() => null))?.status === 200, {
    what: "the server ready",
    timeoutMs: 90_000,
    intervalMs: 100,
  });
  await Promise.race([ready, exited]);
  exited.catch(() => {}); // a later exit is the test's own stop
  return { proc, output: () => text, drained, readyMs: performance.now() - t0 };
}

async function stopCleanly(server: Server): Promise<void> {
  server.proc.kill("SIGTERM");
  expect(await server.proc.exited).toBe(0);
  await server.drained;
  expect(server.output()).toContain('"msg":"stopped"');
  const left = await check(() => (processesIn(root).length === 0 ? "none" : false), {
    what: "no process from the test's directory",
    timeoutMs: 15_000,
  }).catch(() => processesIn(root));
  expect(left).toBe("none");
}

const auth = () => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });

async function readingsOf(device: string): Promise<Array<{ ts: string; metrics: Record<string, number> }>> {
  const r = await fetch(`${base}/api/v1/devices/${device}/readings`, { headers: auth() });
  return ((await r.json()) as { readings: Array<{ ts: string; metrics: Record<string, number> }> }).readings;
}

/** Every posted reading comes back from the API, with its value. */
async function expectAllBack(): Promise<void> {
  for (const device of new Set(posted.map((p) => p.device_id))) {
    const want = posted
      .filter((p) => p.device_id === device)
      .map((p) => [Date.parse(p.ts), p.metrics.v])
      .sort();
    const got = await check(
      async () => {
        const rows = (await readingsOf(device)).map((r) => [Date.parse(r.ts), r.metrics.v]).sort();
        return rows.length === want.length && rows;
      },
      { what: `the ${want.length} readings of ${device}`, timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(got).toEqual(want);
  }
}

async function post(count: number): Promise<void> {
  const now = Date.now();
  const batch = Array.from({ length: count }, (_, i) => ({
    device_id: `dev-${i % 2}`,
    ts: new Date(now - (posted.length + i) * 1_000).toISOString(),
    metrics: { v: posted.length + i },
  }));
  const r = await fetch(`${base}/api/v1/telemetry`, { method: "POST", headers: auth(), body: JSON.stringify(batch) });
  expect(r.status).toBe(202);
  expect(((await r.json()) as { accepted: number }).accepted).toBe(count);
  posted.push(...batch);
}

beforeAll(async () => {
  const built = await builtExecutable();
  root = mkdtempSync(join(tmpdir(), "telemetry-fresh-"));
  app = join(root, "app");
  mkdirSync(app);
  exe = join(app, "telemetry");
  copyFileSync(built, exe);
  chmodSync(exe, 0o755);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = {
    PATH: basicTools(join(root, "tools")),
    PORT: String(port),
    TELEMETRY_NATS_PORT: "0",
    TELEMETRY_POSTGRES_BIN_DIR: "none",
  };
  if (!embeddedDatabase) env.DATABASE_URL = await freshDatabase("fresh"); // THE NO-POSTGRESQL PART: see above
}, 120_000);

afterAll(() => {
  for (const { pid } of processesIn(root)) signalPid(pid, "SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

describe("a fresh machine: the executable alone", () => {
  test("the directory holds only the executable; PATH reaches neither nats-server nor PostgreSQL's binaries", () => {
    expect(readdirSync(app)).toEqual(["telemetry"]);
    for (const tool of ["nats-server", "postgres", "initdb", "pg_ctl"])
      expect(Bun.which(tool, { PATH: env.PATH })).toBeNull();
    expect(Bun.which("sh", { PATH: env.PATH })).not.toBeNull();
  });

  test.if(!embeddedDatabase)(
    "no DATABASE_URL: serve stops at once, saying no PostgreSQL is found, and leaves nothing running",
    async () => {
      const elsewhere = join(root, "no-database");
      mkdirSync(elsewhere);
      const { DATABASE_URL: _, ...withoutDatabase } = env;
      const proc = Bun.spawn({
        cmd: [exe, "serve"],
        cwd: elsewhere,
        env: withoutDatabase,
        stdout: "ignore",
        stderr: "pipe",
      });
      const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      expect(code).toBe(1);
      expect(stderr).toContain(
        "PostgreSQL server not found; install the Debian package 'postgresql' (apt-get install postgresql) or set DATABASE_URL (TELEMETRY_POSTGRES_BIN_DIR=none",
      );
      const left = await check(() => (processesIn(root).length === 0 ? "none" : false), {
        what: "no process from the test's directory",
        timeoutMs: 15_000,
      }).catch(() => processesIn(root));
      expect(left).toBe("none");
    },
    60_000,
  );

  test("zero config: it starts the nats-server it carries, takes readings and gives them back; SIGTERM leaves nothing", async () => {
    const first = await start(app);
    const children = processesIn(root).filter((p) => p.pid !== first.proc.pid);
    expect(children.map((p) => p.exe)).toEqual([
      expect.stringMatching(new RegExp(`^${app}/data/bin/nats-server-\\d+\\.\\d+\\.\\d+-[0-9a-f]{12}$`)),
    ]);
    expect(statSync(join(app, "data", "bin")).mode & 0o777).toBe(0o700);
    // /ready can answer before the log line written just ahead of it has come through the pipe
    await check(() => first.output().includes('"msg":"extracted the embedded nats-server"'), {
      what: "the extraction logged",
    });
    key = /tk_[A-Za-z0-9_-]{20,}/.exec(first.output())?.[0] ?? "";
    expect(key).not.toBe("");
    await post(6);
    await expectAllBack();
    await stopCleanly(first);

    const second = await start(app);
    expect(second.output()).not.toContain("extracted the embedded nats-server"); // the copy is intact: kept
    await expectAllBack();
    await post(4);
    await expectAllBack();
    await stopCleanly(second);
    console.log(
      `FRESH first_ready_ms=${first.readyMs.toFixed(0)} restart_ready_ms=${second.readyMs.toFixed(0)} database=${embeddedDatabase ? "embedded" : "DATABASE_URL"}`,
    );
  }, 240_000);
});
