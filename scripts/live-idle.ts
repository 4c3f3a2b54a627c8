/**
 * What idle live-stream subscribers cost the server (docs/stream.md): starts nats-server and
 * PostgreSQL, the server as a process of its own (all roles), measures its RSS and CPU with no
 * stream open, opens N streams (GET /api/v1/stream over fetch, one tenant, HTTP/1.1: one TCP
 * connection each) and measures again after they have sat idle for SECONDS, heartbeats included.
 * The same time with no stream open is measured first, as the baseline.
 *   BUN_CONFIG_MAX_HTTP_REQUESTS=4000 node_modules/.bin/bun scripts/live-idle.ts [n=1000] [seconds=30]
 * (Bun's fetch runs at most 256 requests at once unless told otherwise.)
 * DEFAULT_LIMITS=1 keeps the server's default bounds (1000 per tenant): the hostile case, e.g.
 * 10,000 streams of one tenant, of which 1000 open and the rest get 429 too_many_streams.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../src/embedded/process.ts";
import { check, freshDatabase, startNats, stopSharedServices } from "../test/helpers/services.ts";
import { TEST_KEY } from "../test/helpers/server.ts";

const [n = 1000, seconds = 30] = process.argv.slice(2).map(Number);
if (n > 200 && Number(process.env.BUN_CONFIG_MAX_HTTP_REQUESTS ?? 256) < n + 10) {
  console.error(
    `set BUN_CONFIG_MAX_HTTP_REQUESTS=${n + 100} (or more): Bun's fetch would queue the streams beyond 256`,
  );
  process.exit(2);
}
const root = resolve(import.meta.dir, "..");
const ticks = 100; // USER_HZ on Linux

function usage(pid: number): { rssMiB: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { rssMiB: rssKiB / 1024, cpuS: (Number(fields[11]) + Number(fields[12])) / ticks };
}

await using nats = await startNats();
const databaseUrl = await freshDatabase("liveidle");
const port = await freePort();
const dataDir = mkdtempSync(join(tmpdir(), "telemetry-live-idle-"));
const proc = Bun.spawn({
  cmd: [process.execPath, "src/cli/main.ts", "serve"],
  cwd: root,
  env: {
    PATH: process.env.PATH!,
    PORT: String(port),
    HOST: "127.0.0.1",
    TELEMETRY_DATA_DIR: dataDir,
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    TELEMETRY_API_KEYS: `acme:${TEST_KEY}`,
    ...(process.env.DEFAULT_LIMITS
      ? {}
      : {
          TELEMETRY_LIVE_MAX_PER_TENANT: String(Math.max(1000, n)),
          TELEMETRY_LIVE_MAX_SUBSCRIBERS: String(Math.max(5000, n)),
        }),
    LOG_LEVEL: "warn",
  },
  stdin: "ignore",
  stdout: "inherit",
  stderr: "inherit",
});
const url = `http://127.0.0.1:${port}`;
const aborts: AbortController[] = [];
const statuses = new Map<number, number>();
try {
  await check(async () => (await fetch(`${url}/ready`).catch(() => null))?.ok, {
    what: "the server",
    timeoutMs: 60_000,
  });
  // One stream opened and closed first, so the fan-outs' start is not counted as subscriber cost.
  const warm = new AbortController();
  await fetch(`${url}/api/v1/stream`, { headers: { authorization: `Bearer ${TEST_KEY}` }, signal: warm.signal });
  warm.abort();
  Bun.gc(true);
  await Bun.sleep(2_000);
  const quiet = usage(proc.pid);
  await Bun.sleep(seconds * 1000);
  const before = usage(proc.pid);
  const baseCpu = before.cpuS - quiet.cpuS;
  const t0 = performance.now();
  for (let i = 0; i < n; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, async () => {
        const a = new AbortController();
        aborts.push(a);
        const res = await fetch(`${url}/api/v1/stream`, {
          headers: { authorization: `Bearer ${TEST_KEY}` },
          signal: a.signal,
        });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status !== 200) return void (await res.text());
        void res.body!.pipeTo(new WritableStream()).catch(() => {});
      }),
    );
  }
  const opened = usage(proc.pid);
  const openMs = performance.now() - t0;
  await Bun.sleep(seconds * 1000);
  const idle = usage(proc.pid);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const stillOpen = Number(/^telemetry_live_streams (\d+)/m.exec(metrics)?.[1] ?? -1);
  const idleCpu = idle.cpuS - opened.cpuS;
  const f = (x: number, d = 1) => x.toFixed(d);
  console.log(
    [
      `${n} live streams asked for (answers: ${[...statuses].map(([k, v]) => `${v} × ${k}`).join(", ")}), server process (pid ${proc.pid}), heartbeat 15 s; still open after ${seconds} s: ${stillOpen}`,
      `  RSS before ${f(before.rssMiB)} MiB, with the streams open ${f(opened.rssMiB)} MiB, after ${seconds} s idle ${f(idle.rssMiB)} MiB` +
        ` (+${f(idle.rssMiB - before.rssMiB)} MiB, ${f(((idle.rssMiB - before.rssMiB) * 1024) / Math.max(1, statuses.get(200) ?? 0))} KiB per open stream)`,
      `  CPU to open them: ${f(opened.cpuS - before.cpuS, 2)} s in ${f(openMs / 1000, 1)} s;` +
        ` idle: ${f(idleCpu, 2)} s CPU in ${seconds} s (${f((idleCpu / seconds) * 100, 2)} % of one core;` +
        ` with no stream open ${f(baseCpu, 2)} s, ${f((baseCpu / seconds) * 100, 2)} %)`,
    ].join("\n"),
  );
} finally {
  for (const a of aborts) a.abort();
  proc.kill("SIGTERM");
  await Promise.race([proc.exited, Bun.sleep(15_000)]);
  if (proc.exitCode === null) proc.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
  await stopSharedServices();
}
