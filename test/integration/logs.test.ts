/**
 * Logs of the real `telemetry serve` (a child process, stdout a pipe): JSON lines, one summary
 * line per request with fixed fields, probes at debug, and no secret anywhere in the output —
 * not the API keys (good or wrong), the admin token, a created key, a channel secret, the secret
 * key or the database password; no ANSI colours in the pipe; /metrics names under telemetry_.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check, freshDatabase, startNats } from "../helpers/services.ts";

const KEY = `log-test-key-${randomBytes(8).toString("hex")}`;
const WRONG_KEY = `wrong-key-${randomBytes(8).toString("hex")}`;
const ADMIN = `admin-${randomBytes(8).toString("hex")}`;
const SECRET_KEY = randomBytes(32).toString("base64");
const DB_PASSWORD = `pw${randomBytes(6).toString("hex")}`;
const CHANNEL_SECRET = `chan-secret-${randomBytes(8).toString("hex")}`;

let nats: Awaited<ReturnType<typeof startNats>>;
let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
let output = "";
let errors = "";
let base = "";
let dataDir = "";

beforeAll(async () => {
  nats = await startNats();
  // The test cluster trusts local connections, so a password in the URL is accepted and ignored: it must still never be logged.
  const databaseUrl = (await freshDatabase("logs")).replace(
    "postgres://postgres@",
    `postgres://postgres:${DB_PASSWORD}@`,
  );
  dataDir = mkdtempSync(join(tmpdir(), "telemetry-logs-"));
  proc = Bun.spawn({
    cmd: [process.execPath, "src/cli/main.ts", "serve"],
    cwd: join(import.meta.dir, "../.."),
    env: {
      PATH: process.env.PATH!,
      PORT: "0",
      HOST: "127.0.0.1",
      NATS_URL: nats.url,
      DATABASE_URL: databaseUrl,
      TELEMETRY_DATA_DIR: dataDir,
      TELEMETRY_API_KEYS: `acme:${KEY}`,
      TELEMETRY_ADMIN_TOKEN: ADMIN,
      TELEMETRY_SECRET_KEY: SECRET_KEY,
      TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1", // the hub channel below points at loopback
      TELEMETRY_FLUSH_INTERVAL: "100ms",
      LOG_LEVEL: "info",
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const decoder = new TextDecoder();
  void (async () => {
    for await (const chunk of proc.stdout) output += decoder.decode(chunk);
  })();
  void (async () => {
    for await (const chunk of proc.stderr) errors += decoder.decode(chunk);
  })();
  base = await check(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], {
    what: "the serving line",
    timeoutMs: 60_000,
  });
}, 90_000);

afterAll(async () => {
  if (proc && proc.exitCode === null) proc.kill("SIGKILL");
  await nats?.[Symbol.asyncDispose]();
  rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

const call = (method: string, path: string, key: string, body?: unknown) =>
  fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

test("GET /metrics: prom-client's process and runtime metrics under telemetry_, the prefix never doubled", async () => {
  const text = await (await fetch(`${base}/metrics`)).text();
  expect(text).toContain("\ntelemetry_process_cpu_user_seconds_total ");
  expect(text).toContain("\ntelemetry_process_resident_memory_bytes ");
  expect(text).toContain("# TYPE telemetry_nodejs_eventloop_lag_seconds gauge");
  expect(text).not.toContain("process_process");
  expect(text).not.toContain("telemetry_process_nodejs");
  const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
  expect(names.filter((n) => !n.startsWith("telemetry_"))).toEqual([]);
});

test("serve re-executed itself with JavaScriptCore's heap sized (TELEMETRY_JSC_RAM_SIZE): the spawned pid itself, no child", async () => {
  const environ = (await Bun.file(`/proc/${proc.pid}/environ`).text()).split("\0");
  expect(environ).toContain("BUN_JSC_forceRAMSize=536870912"); // the default 512MiB; the test did not set it
  expect(environ).toContain(`TELEMETRY_DATA_DIR=${dataDir}`); // the rest of the environment kept
  const children = Bun.spawnSync({ cmd: ["pgrep", "-P", String(proc.pid)] })
    .stdout.toString()
    .trim();
  expect(children).toBe(""); // execve, not a supervising parent
});

test("a BUN_JSC_forceRAMSize set only in .env is applied: serve re-executes with it (Bun reads JSC options before .env)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "telemetry-dotenv-"));
  writeFileSync(join(dir, ".env"), "BUN_JSC_forceRAMSize=268435456\n");
  const served = Bun.spawn({
    cmd: [process.execPath, join(import.meta.dir, "../../src/cli/main.ts"), "serve"],
    cwd: dir, // Bun loads the .env of the working directory
    env: {
      PATH: process.env.PATH!,
      PORT: "0",
      HOST: "127.0.0.1",
      NATS_URL: nats.url,
      DATABASE_URL: await freshDatabase("dotenv"),
      TELEMETRY_DATA_DIR: join(dir, "data"),
      TELEMETRY_API_KEYS: `acme:${KEY}`,
      TELEMETRY_ROLES: "api",
      LOG_LEVEL: "warn",
    },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    // The pid's environment is the one it was (re-)executed with: .env's value there means execve applied it.
    await check(
      async () =>
        (await Bun.file(`/proc/${served.pid}/environ`).text()).split("\0").includes("BUN_JSC_forceRAMSize=268435456"),
      { what: "the served pid's environment to have .env's BUN_JSC_forceRAMSize", timeoutMs: 15_000 },
    );
    expect(served.exitCode).toBeNull();
  } finally {
    served.kill("SIGKILL");
    await served.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

test("one JSON summary line per request, and never a secret", async () => {
  const made: Array<{ method: string; path: string; status: number }> = [];
  const track = async (method: string, path: string, key: string, body?: unknown) => {
    const res = await call(method, path, key, body);
    made.push({ method, path, status: res.status });
    return res;
  };
  expect(
    (
      await track("POST", "/api/v1/telemetry", KEY, {
        device_id: "log-1",
        ts: new Date().toISOString(),
        metrics: { temp: 20 },
      })
    ).status,
  ).toBe(202);
  expect((await track("GET", "/api/v1/devices?limit=5", KEY)).status).toBe(200);
  expect((await track("GET", "/api/v1/rules", WRONG_KEY)).status).toBe(401);
  expect(
    (
      await track("POST", "/api/v1/channels", KEY, {
        name: "c",
        kind: "hub",
        url: "http://127.0.0.1:9/x",
        secret: CHANNEL_SECRET,
      })
    ).status,
  ).toBe(201);
  expect((await track("POST", "/admin/v1/tenants", ADMIN, { id: "logtenant" })).status).toBe(201);
  const created = await track("POST", "/admin/v1/tenants/logtenant/keys", ADMIN, {});
  const createdKey = ((await created.json()) as { key: string }).key;
  expect(createdKey).toStartWith("tk_");
  expect((await track("GET", "/api/v1/alerts/not-a-uuid", KEY)).status).toBe(404);
  await fetch(`${base}/health`);

  // The lines are written asynchronously: wait for the last request's line.
  const lines = await check(
    () => {
      const parsed = output
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, any>);
      return parsed.filter((l) => l.msg === "request").length >= made.length && parsed;
    },
    { what: "the request lines", timeoutMs: 10_000 },
  );
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
  const all = output + errors;

  for (const secret of [
    KEY,
    WRONG_KEY,
    ADMIN,
    SECRET_KEY,
    DB_PASSWORD,
    CHANNEL_SECRET,
    createdKey,
    createdKey.slice(11),
  ])
    expect(all).not.toContain(secret);
  expect(all).not.toContain("\x1b["); // stdout and stderr are pipes: no colours

  const requests = lines.filter((l) => l.msg === "request");
  expect(requests.map((l) => ({ method: l.method, path: l.path.split("?")[0], status: l.status }))).toEqual(
    made.map((m) => ({ ...m, path: m.path.split("?")[0] })),
  );
  for (const l of requests) {
    expect(Object.keys(l).sort()).toEqual(
      expect.arrayContaining(["component", "level", "method", "ms", "path", "route", "status", "time"]),
    );
    expect(l.component).toBe("http");
    expect(typeof l.ms).toBe("number");
    expect(l.path).not.toContain("?"); // query strings are not logged
    expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT/);
  }
  expect(requests.find((l) => l.path === "/api/v1/telemetry")).toMatchObject({
    tenant: "acme",
    route: "/api/v1/telemetry",
    status: 202,
    level: 30,
  });
  expect(requests.find((l) => l.status === 401)!.tenant).toBeUndefined();
  expect(requests.some((l) => l.path === "/health")).toBe(false); // probes are debug
  // every line is JSON (parsed above) and the lifecycle is logged too
  const final = output
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, any>);
  expect(final.some((l) => l.msg === "telemetry serving")).toBe(true);
  expect(final.some((l) => l.msg === "shutting down")).toBe(true);
}, 90_000);
