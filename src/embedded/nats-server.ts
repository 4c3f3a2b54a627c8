/** Runs and supervises a local nats-server with JetStream (file storage) on loopback. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { logger } from "../lib/log.ts";
import { INTERNAL_USER, renderUsers } from "../mqtt/users.ts";
import { findExecutable, freePort, pidAlive, pidCommandLine, run, Supervisor, terminatePid, waitFor } from "./process.ts";
import type { LocalNats } from "./types.ts";

const log = logger("nats-server");

export interface LocalNatsOptions {
  /** JetStream store_dir; the generated config and pid file live here too (JetStream only uses its `jetstream/` subdir). */
  storeDir: string;
  /** 0 or undefined: a random free port, kept across restarts. */
  port?: number;
  host?: string;
  /** jetstream.sync_interval, e.g. "always" or "2m" (needs nats-server >= 2.10). */
  syncInterval?: string;
  /** MQTT 3.1.1 listener for devices; turns on authorization (see mqtt/users.ts). */
  mqtt?: { host: string; port: number };
  binary?: string;
}

export function findNatsServer(): string {
  const found = findExecutable("nats-server", ["/usr/sbin", "/usr/local/bin"]);
  if (!found) {
    throw new Error(
      "nats-server not found on PATH; install the Debian package 'nats-server' (apt-get install nats-server) or set NATS_URL",
    );
  }
  return found;
}

export async function startLocalNats(opts: LocalNatsOptions): Promise<LocalNats> {
  const binary = opts.binary ?? findNatsServer();
  const storeDir = resolve(opts.storeDir);
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port || (await freePort(host));
  const url = `nats://${host}:${port}`;
  const configFile = join(storeDir, "nats-server.conf");
  const pidFile = join(storeDir, "nats-server.pid");
  const usersFile = join(storeDir, "mqtt-users.conf");

  mkdirSync(dirname(storeDir), { recursive: true });
  mkdirSync(storeDir, { recursive: true, mode: 0o700 });
  // Kept across restarts (devices can connect before the key store is read again); rewritten by the MQTT user sync.
  if (opts.mqtt && !existsSync(usersFile)) writeFileSync(usersFile, renderUsers([]), { mode: 0o600 });
  writeFileSync(configFile, renderConfig({ host, port, storeDir, pidFile, syncInterval: opts.syncInterval, mqtt: opts.mqtt, usersFile }));
  if (opts.syncInterval || opts.mqtt) await checkConfig(binary, configFile);

  const supervisor = new Supervisor({
    name: "nats-server",
    log,
    prepare: () => stopOrphan(pidFile),
    spawn: () => ({ cmd: [binary, "-c", configFile], cwd: storeDir, parentDeathSignal: "SIGTERM", onLine: (line) => log.debug(line) }),
    ready: (signal) => waitFor(() => jetStreamAnswers(url), { timeoutMs: 30_000, intervalMs: 100, what: `JetStream at ${url}`, signal }),
    stopSignal: "SIGTERM",
    stopGraceMs: 10_000,
  });
  await supervisor.start();
  log.info({ url, storeDir, pid: supervisor.pid, mqtt: opts.mqtt ? `${opts.mqtt.host}:${opts.mqtt.port}` : undefined }, "local nats-server started");

  const mqtt = opts.mqtt && {
    url: `mqtt://${opts.mqtt.host === "0.0.0.0" ? "127.0.0.1" : opts.mqtt.host}:${opts.mqtt.port}`,
    usersFile,
    reload() {
      if (supervisor.pid) process.kill(supervisor.pid, "SIGHUP");
    },
  };
  return Object.assign(supervisor, { url, port, storeDir, mqtt });
}

function renderConfig(c: { host: string; port: number; storeDir: string; pidFile: string; syncInterval?: string; mqtt?: { host: string; port: number }; usersFile: string }): string {
  const q = JSON.stringify;
  const lines = [
    `listen: ${q(`${c.host}:${c.port}`)}`,
    `pid_file: ${q(c.pidFile)}`,
    "jetstream {",
    `  store_dir: ${q(c.storeDir)}`,
    ...(c.syncInterval ? [`  sync_interval: ${q(c.syncInterval)}`] : []),
    "}",
    // MQTT needs a server name; without credentials a connection is the internal user (standard connections only).
    ...(c.mqtt
      ? [`server_name: ${q(`telemetry-${c.port}`)}`, `no_auth_user: ${q(INTERNAL_USER)}`, `mqtt {`, `  listen: ${q(`${c.mqtt.host}:${c.mqtt.port}`)}`, "}", `include ${q(basename(c.usersFile))}`]
      : []),
  ];
  return `${lines.join("\n")}\n`;
}

/** nats-server 2.9.x rejects `sync_interval` (unknown field; it arrived in 2.10), so say that plainly. */
async function checkConfig(binary: string, configFile: string): Promise<void> {
  try {
    await run({ cmd: [binary, "-c", configFile, "-t"] });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes('unknown field "sync_interval"')) {
      throw new Error(
        `this nats-server (${binary}) does not support jetstream sync_interval (needs nats-server >= 2.10); unset the sync interval or upgrade nats-server`,
      );
    }
    throw err;
  }
}

/** A parent that crashed may have left its nats-server running on our port and store. */
async function stopOrphan(pidFile: string): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10);
  } catch {
    return;
  }
  if (!pid || !pidAlive(pid) || !pidCommandLine(pid).includes("nats-server")) return;
  log.warn({ pid }, "stopping a nats-server left running by a previous process");
  await terminatePid(pid, "SIGTERM", 10_000);
}

async function jetStreamAnswers(url: string): Promise<boolean> {
  const nc = await connect({ servers: url, reconnect: false, timeout: 1_000 });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.getAccountInfo();
    return true;
  } finally {
    await nc.close();
  }
}
