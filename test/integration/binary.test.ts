/**
 * The smoke suite of the compiled executable (what ships, not the sources): zero config in an
 * empty directory it starts its own nats-server and PostgreSQL and prints a generated key; every
 * role works (ingest, writer, evaluator, api) and every operator subcommand works against the
 * running server's services (status, replay, tenants, keys, quarantine, migrate, config check);
 * SIGTERM stops it and its children cleanly. Prints the executable's size and cold start.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { natsServerVersion, sha256Hex } from "../../src/embedded/nats-binary.ts";
import { findNatsServer } from "../../src/embedded/nats-server.ts";
import { freePort, pidAlive } from "../../src/embedded/process.ts";
import { builtExecutable } from "../helpers/executable.ts";
import { check, freshDatabase } from "../helpers/services.ts";

let work: string;
let binary: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "telemetry-bin-"));
  chmodSync(work, 0o755);
  binary = await builtExecutable();
}, 120_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

test("--help lists the commands; size and cold start", () => {
  const t0 = performance.now();
  const out = Bun.spawnSync({ cmd: [binary, "--help"] }).stdout.toString();
  const coldMs = performance.now() - t0;
  for (const cmd of [
    "serve",
    "migrate",
    "status",
    "replay",
    "quarantine",
    "dlq",
    "tenants",
    "keys",
    "config",
    "version",
    "licenses",
  ])
    expect(out).toContain(cmd);
  console.log(`SMOKE binary_mib=${(statSync(binary).size / 1_048_576).toFixed(1)} help_ms=${coldMs.toFixed(0)}`);
});

test("version: telemetry's, Bun's and the embedded nats-server's (the machine's, by its hash); licenses: the texts it carries", () => {
  const system = findNatsServer();
  const json = Bun.spawnSync({ cmd: [binary, "version", "--json"], env: { PATH: "/nonexistent" } });
  expect(json.exitCode).toBe(0);
  expect(JSON.parse(json.stdout.toString())).toEqual({
    telemetry: pkg.version,
    bun: Bun.version,
    nats_server: {
      source: "embedded",
      path: realpathSync(system),
      version: natsServerVersion(system),
      sha256: sha256Hex(readFileSync(system)),
    },
  });
  const text = Bun.spawnSync({ cmd: [binary, "version"] }).stdout.toString();
  expect(text).toContain(`nats-server  ${natsServerVersion(system)} (embedded, sha256 `);
  const path = JSON.parse(
    Bun.spawnSync({ cmd: [binary, "version", "--json", "--nats-server-bin", "path"] }).stdout.toString(),
  );
  expect(path.nats_server).toEqual({ source: "path", path: system, version: natsServerVersion(system) });

  const licenses = Bun.spawnSync({ cmd: [binary, "licenses"] }).stdout.toString();
  expect(licenses).toContain(`=== nats-server ${natsServerVersion(system)} (built from ${realpathSync(system)}`);
  expect(licenses).toContain("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"); // Apache-2.0 in full
  for (const dep of Object.keys(pkg.dependencies))
    expect(licenses).toContain(`=== ${dep} ${pkg.dependencies[dep as keyof typeof pkg.dependencies]} (`);
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
  const migrate = () =>
    Bun.spawnSync({
      cmd: [binary, "migrate", "--database-url", url],
      env: { PATH: process.env.PATH!, LOG_LEVEL: "warn" },
    });
  const first = migrate();
  expect(first.exitCode).toBe(0);
  expect(first.stdout.toString()).toContain(
    "applied 0001_init, 0002_alerts, 0003_tenants, 0004_mqtt, 0005_device_keys, 0006_late_data, 0007_line_protocol, 0008_routes, 0009_evaluator_partitions, 0010_route_inflight, 0011_devices_fillfactor (storage: postgresql)",
  );
  const second = migrate();
  expect(second.stdout.toString()).toContain("already up to date");
});

describe("zero config in an empty directory", () => {
  let dir: string;
  let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  let output = "";
  let key: string;
  let base: string;
  const auth = () => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });
  /** The executable run in the server's directory: operator commands find its embedded services there. */
  const run = (...args: string[]) => {
    const r = Bun.spawnSync({
      cmd: [binary, ...args],
      cwd: dir,
      env: { PATH: process.env.PATH!, LOG_LEVEL: "warn" },
      stdout: "pipe",
      stderr: "pipe",
    });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const post = (body: unknown, k = key) =>
    fetch(`${base}/api/v1/telemetry`, {
      method: "POST",
      headers: { ...auth(), authorization: `Bearer ${k}` },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    dir = join(work, "empty");
    Bun.spawnSync({ cmd: ["mkdir", "-m", "755", dir] });
    const port = await freePort();
    const natsPort = await freePort();
    proc = Bun.spawn({
      cmd: [binary, "serve"],
      cwd: dir,
      env: { PATH: process.env.PATH!, PORT: String(port), TELEMETRY_NATS_PORT: String(natsPort) },
      stdout: "pipe",
      stderr: "pipe",
    });
    const decoder = new TextDecoder();
    void (async () => {
      for await (const chunk of proc.stdout) output += decoder.decode(chunk);
    })();
    key = await check(() => /tk_[A-Za-z0-9_-]{20,}/.exec(output)?.[0], {
      what: "generated key in output",
      timeoutMs: 60_000,
    });
    base = `http://127.0.0.1:${port}`;
    await check(async () => (await fetch(`${base}/ready`).catch(() => null))?.status === 200, {
      what: "ready",
      timeoutMs: 30_000,
    });
  }, 120_000);

  afterAll(() => {
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
  });

  test("ingest, writer and api: one record end to end", async () => {
    expect((await post({ device_id: "truck-1", ts: new Date().toISOString(), metrics: { temp: 21.5 } })).status).toBe(
      202,
    );
    const readings = await check(
      async () => {
        const r = await fetch(`${base}/api/v1/devices/truck-1/readings`, { headers: auth() });
        const body = (await r.json()) as { readings: Array<{ metrics: Record<string, number> }> };
        return body.readings.length === 1 && body.readings;
      },
      { what: "the reading in the database", timeoutMs: 15_000 },
    );
    expect(readings[0]!.metrics).toEqual({ temp: 21.5 });
    expect(existsSync(join(dir, "data", "nats"))).toBe(true);
    expect(existsSync(join(dir, "data", "pg"))).toBe(true);
  }, 30_000);

  test("evaluator: a threshold rule opens an alert", async () => {
    const rule = await fetch(`${base}/api/v1/rules`, {
      method: "POST",
      headers: auth(),
      body: JSON.stringify({ name: "hot", metric: "temp", condition: { type: "above_threshold", threshold: 100 } }),
    });
    expect(rule.status).toBe(201);
    expect((await post({ device_id: "truck-2", ts: new Date().toISOString(), metrics: { temp: 150 } })).status).toBe(
      202,
    );
    const alerts = await check(
      async () => {
        const body = (await (await fetch(`${base}/api/v1/alerts`, { headers: auth() })).json()) as {
          alerts: Array<{ device_id: string; status: string }>;
        };
        return body.alerts.length > 0 && body.alerts;
      },
      { what: "the alert", timeoutMs: 20_000 },
    );
    expect(alerts.map((a) => [a.device_id, a.status])).toEqual([["truck-2", "open"]]);
  }, 30_000);

  test("status, replay, migrate and config check against the running server", async () => {
    const status = run("status", "--json");
    expect(status.code).toBe(0);
    const s = JSON.parse(status.out);
    expect(s.stream.messages).toBe(2);
    expect(s.consumers.writer).toMatchObject({ pending: 0, ack_pending: 0 });
    expect(s.database).toMatchObject({ reachable: true, mode: "postgresql", quarantine: {} });
    expect(run("status").out).toContain("database:   reachable, storage postgresql");

    const dry = run("replay", "--from", "1", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.out).toContain("rows that would be inserted: 0, rows already present: 2");
    const replay = run("replay", "--from", "1");
    expect(replay.code).toBe(0);
    expect(replay.out).toContain("rows inserted: 0, rows already present: 2");
    expect(replay.out).toContain("alerts created: 0");
    expect(run("replay", "--from", "2020-01-01T00:00:00Z").code).toBe(2);

    expect(run("migrate").out).toContain("already up to date");
    const config = run("config", "check");
    expect(config.code).toBe(0);
    expect(config.out).not.toContain(key);
    expect(run("config", "check", "--batch-size", "0").code).toBe(2);
  }, 60_000);

  test("tenants, keys, quarantine and dlq against the running server", async () => {
    expect(JSON.parse(run("tenants", "list", "--json").out).map((t: { id: string }) => t.id)).toEqual(["default"]);
    expect(run("tenants", "create", "acme").code).toBe(0);
    const created = run("keys", "create", "acme", "--json");
    expect(created.code).toBe(0);
    const acmeKey = JSON.parse(created.out).key as string;
    expect((await post({ device_id: "a-1", ts: new Date().toISOString(), metrics: { v: 1 } }, acmeKey)).status).toBe(
      202,
    );
    expect(JSON.parse(run("keys", "list", "acme", "--json").out)).toHaveLength(1);
    const q = run("quarantine", "list", "--json");
    expect(q.code).toBe(0);
    expect(JSON.parse(q.out)).toEqual([]);
    const d = run("dlq", "list", "--json");
    expect(d.code).toBe(0);
    expect(JSON.parse(d.out)).toEqual([]);
  }, 60_000);

  test("SIGTERM: exit 0, the supervised children go with it", async () => {
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const children = Bun.spawnSync({ cmd: ["pgrep", "-f", join(dir, "data")] })
      .stdout.toString()
      .trim();
    expect(
      children
        .split("\n")
        .filter(Boolean)
        .filter((pid) => pidAlive(Number(pid))),
    ).toEqual([]);
  }, 60_000);
});
