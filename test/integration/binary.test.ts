/**
 * The compiled executable, zero config, in an empty directory: it starts its own nats-server and
 * PostgreSQL, prints a generated key, takes one record end to end, and stops cleanly on SIGTERM.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, pidAlive } from "../../src/embedded/process.ts";
import { check, freshDatabase } from "../helpers/services.ts";

const root = resolve(import.meta.dir, "../..");
let work: string;
let binary: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "telemetry-bin-"));
  chmodSync(work, 0o755);
  binary = join(work, "telemetry");
  const build = Bun.spawnSync({ cmd: [process.execPath, "build", "--compile", "src/cli/main.ts", "--outfile", binary], cwd: root, stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

test("--help lists the commands", () => {
  const out = Bun.spawnSync({ cmd: [binary, "--help"] }).stdout.toString();
  for (const cmd of ["serve", "migrate", "config"]) expect(out).toContain(cmd);
});

test("a bad setting stops the process with one line per problem", () => {
  const r = Bun.spawnSync({ cmd: [binary, "config", "--batch-size", "zero", "--roles", "bogus"], stderr: "pipe" });
  expect(r.exitCode).toBe(2);
  const lines = r.stderr.toString().trim().split("\n");
  expect(lines).toHaveLength(2);
  expect(lines.some((l) => l.startsWith("telemetry: --batch-size:"))).toBe(true);
});

test("migrate applies the embedded migrations once", async () => {
  const url = await freshDatabase("cli");
  const migrate = () => Bun.spawnSync({ cmd: [binary, "migrate", "--database-url", url], env: { PATH: process.env.PATH!, LOG_LEVEL: "warn" } });
  const first = migrate();
  expect(first.exitCode).toBe(0);
  expect(first.stdout.toString()).toContain("applied 0001_init, 0002_alerts, 0003_tenants (storage: postgresql)");
  const second = migrate();
  expect(second.stdout.toString()).toContain("already up to date");
});

test("zero config in an empty directory: one record end to end, clean shutdown", async () => {
  const dir = join(work, "empty");
  Bun.spawnSync({ cmd: ["mkdir", "-m", "755", dir] });
  const port = await freePort();
  const natsPort = await freePort();
  const proc = Bun.spawn({
    cmd: [binary, "serve"],
    cwd: dir,
    env: { PATH: process.env.PATH!, PORT: String(port), TELEMETRY_NATS_PORT: String(natsPort) },
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  const decoder = new TextDecoder();
  void (async () => {
    for await (const chunk of proc.stdout) output += decoder.decode(chunk);
  })();
  try {
    const key = await check(() => /tk_[A-Za-z0-9_-]{20,}/.exec(output)?.[0], { what: "generated key in output", timeoutMs: 60_000 });
    const base = `http://127.0.0.1:${port}`;
    await check(async () => (await fetch(`${base}/ready`).catch(() => null))?.status === 200, { what: "ready", timeoutMs: 30_000 });
    const res = await fetch(`${base}/api/v1/telemetry`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ device_id: "truck-1", ts: new Date().toISOString(), metrics: { temp: 21.5 } }),
    });
    expect(res.status).toBe(202);
    const readings = await check(
      async () => {
        const r = await fetch(`${base}/api/v1/devices/truck-1/readings`, { headers: { authorization: `Bearer ${key}` } });
        const body = (await r.json()) as { readings: Array<{ metrics: Record<string, number> }> };
        return body.readings.length === 1 && body.readings;
      },
      { what: "the reading in the database", timeoutMs: 15_000 },
    );
    expect(readings[0]!.metrics).toEqual({ temp: 21.5 });
    expect(existsSync(join(dir, "data", "nats"))).toBe(true);
    expect(existsSync(join(dir, "data", "pg"))).toBe(true);
  } finally {
    proc.kill("SIGTERM");
  }
  expect(await proc.exited).toBe(0);
  // The supervised children went with it.
  const children = Bun.spawnSync({ cmd: ["pgrep", "-f", join(dir, "data")] }).stdout.toString().trim();
  expect(children.split("\n").filter(Boolean).filter((pid) => pidAlive(Number(pid)))).toEqual([]);
}, 120_000);
