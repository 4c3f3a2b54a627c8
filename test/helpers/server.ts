/** Starts the real server in-process (real HTTP port, real NATS and PostgreSQL URLs) for a test. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { configureLogger } from "../../src/lib/log.ts";
import { startServer, type RunningServer, type StartHooks } from "../../src/server/start.ts";

export const TEST_KEY = "test-key-acme-0123456789";
export const OTHER_KEY = "test-key-beta-0123456789";

export type TestServer = RunningServer & AsyncDisposable;

export async function startTestServer(env: Record<string, string>, hooks: StartHooks = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "telemetry-srv-"));
  const config = loadConfig(
    {},
    {
      PORT: "0",
      HOST: "127.0.0.1",
      TELEMETRY_DATA_DIR: dataDir,
      TELEMETRY_API_KEYS: `acme:${TEST_KEY},beta:${OTHER_KEY}`,
      TELEMETRY_FLUSH_INTERVAL: "100ms",
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
      // Tests feed readings with fixed timestamps of 2026 (helpers/data.ts) as if they were live:
      // no lateness bound unless a test asks for one (decision 0460; integration/late-data).
      TELEMETRY_ALERT_MAX_LATENESS: "0",
      ...env,
    },
  );
  configureLogger(config.logLevel, true);
  const server = await startServer(config, hooks);
  return Object.assign(server, {
    async [Symbol.asyncDispose]() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

export interface PostResult {
  status: number;
  body: any;
  headers: Headers;
}

export async function post(
  server: { url: string },
  body: unknown,
  opts: { key?: string | null; contentType?: string; raw?: boolean } = {},
): Promise<PostResult> {
  const headers: Record<string, string> = { "content-type": opts.contentType ?? "application/json" };
  const key = opts.key === undefined ? TEST_KEY : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`${server.url}/api/v1/telemetry`, {
    method: "POST",
    headers,
    body: opts.raw ? (body as string) : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed, headers: res.headers };
}

export const ndjson = (records: unknown[]) => `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;
