/** Runs and supervises a local nats-server with JetStream (file storage) on loopback. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { logger } from "../lib/log.ts";
import { INTERNAL_USER, renderUsers } from "../core/mqtt-users.ts";
import { assertPortFree, describePortHolder } from "./ports.ts";
import { findExecutable, freePort, pidAlive, pidArgv, run, Supervisor, terminatePid, waitFor } from "./process.ts";
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
  /** MQTT 3.1.1 listener for devices; turns on authorization (see core/mqtt-users.ts). */
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
  writeFileSync(
    configFile,
    renderConfig({ host, port, storeDir, pidFile, syncInterval: opts.syncInterval, mqtt: opts.mqtt, usersFile }),
  );
  if (opts.syncInterval || opts.mqtt) await checkConfig(binary, configFile);

  // The ID the spawned nats-server prints at start (unique per start): ready only counts an answer carrying it.
  let launch: { id?: string } = {};
  let lastId: string | undefined;
  const supervisor = new Supervisor({
    name: "nats-server",
    log,
    prepare: async () => {
      await stopOrphan(pidFile, configFile);
      await assertPortFree(host, port, CANNOT_START, PORT_FIX);
      if (opts.mqtt) await assertPortFree(opts.mqtt.host, opts.mqtt.port, CANNOT_START, MQTT_PORT_FIX);
    },
    spawn: () => {
      const current: { id?: string } = {};
      launch = current;
      const onLine = (line: string) => {
        log.debug(line);
        const id = current.id ? undefined : SERVER_ID.exec(line)?.[1];
        if (id) current.id = lastId = id;
      };
      return { cmd: [binary, "-c", configFile], cwd: storeDir, parentDeathSignal: "SIGTERM", onLine };
    },
    ready: (signal) =>
      waitFor(() => ourJetStreamAnswers(url, launch), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: `JetStream of the nats-server we started at ${url}`,
        signal,
      }),
    stopSignal: "SIGTERM",
    stopGraceMs: 10_000,
  });
  await supervisor.start().catch((err: Error) => {
    throw bindError(err.message, port) ?? err;
  });
  log.info(
    { url, storeDir, binary, pid: supervisor.pid, mqtt: opts.mqtt ? `${opts.mqtt.host}:${opts.mqtt.port}` : undefined },
    "local nats-server started",
  );

  const mqtt = opts.mqtt && {
    url: `mqtt://${opts.mqtt.host === "0.0.0.0" ? "127.0.0.1" : opts.mqtt.host}:${opts.mqtt.port}`,
    usersFile,
    reload() {
      if (supervisor.pid) process.kill(supervisor.pid, "SIGHUP");
    },
  };
  return Object.defineProperties(Object.assign(supervisor, { url, port, storeDir, mqtt }), {
    serverId: { get: () => lastId },
  }) as typeof supervisor & LocalNats;
}

/** The banner line `[INF]   ID:       N...` (56 characters, random at every start). */
const SERVER_ID = /\[INF\]\s+ID:\s+(N[A-Z0-9]{55})\b/;
const CANNOT_START = "the supervised nats-server cannot start";
const PORT_FIX =
  "give this instance its own NATS port with --nats-port <port> or TELEMETRY_NATS_PORT (0 picks a free one), or set NATS_URL to use that broker on purpose";
const MQTT_PORT_FIX = "choose another MQTT port with --mqtt-port or TELEMETRY_MQTT_PORT";

/** nats-server's own `[FTL] Error listening on port: host:port, "... address already in use"`, said plainly (a bind lost to a race). */
function bindError(message: string, natsPort: number): Error | undefined {
  const m = /Error listening on (?:\w+ )?port: (\S+):(\d+)/.exec(message);
  if (!m) return undefined;
  const port = Number(m[2]);
  const holder = describePortHolder(port);
  const fix = port === natsPort ? PORT_FIX : MQTT_PORT_FIX;
  return new Error(
    `${CANNOT_START}: port ${port} on ${m[1]} is already in use${holder ? ` by ${holder}` : ""}; ${fix}`,
  );
}

function renderConfig(c: {
  host: string;
  port: number;
  storeDir: string;
  pidFile: string;
  syncInterval?: string;
  mqtt?: { host: string; port: number };
  usersFile: string;
}): string {
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
      ? [
          `server_name: ${q(`telemetry-${c.port}`)}`,
          `no_auth_user: ${q(INTERNAL_USER)}`,
          `mqtt {`,
          `  listen: ${q(`${c.mqtt.host}:${c.mqtt.port}`)}`,
          "}",
          `include ${q(basename(c.usersFile))}`,
        ]
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

/**
 * A parent that crashed may have left its nats-server running on our port and store. Only a
 * nats-server running our own config file counts; any other process is left alone.
 */
async function stopOrphan(pidFile: string, configFile: string): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10);
  } catch {
    return;
  }
  const cmd = pid && pidAlive(pid) ? pidArgv(pid) : [];
  // nats-server, or an extracted embedded one (nats-server-<version>-<hash>, see nats-binary.ts)
  if (!cmd.some((part) => /^nats-server(-[\w.-]+)?$/.test(basename(part))) || !cmd.includes(configFile)) return;
  log.warn({ pid }, "stopping a nats-server left running by a previous process");
  await terminatePid(pid, "SIGTERM", 10_000);
}

/** True once JetStream answers at `url` from the nats-server whose start printed `launch.id`. */
async function ourJetStreamAnswers(url: string, launch: { id?: string }): Promise<boolean> {
  if (!launch.id) throw new Error("the nats-server we started has not printed its server ID yet");
  const nc = await connect({ servers: url, reconnect: false, timeout: 1_000 });
  try {
    const id = nc.info?.server_id;
    if (id !== launch.id)
      throw new Error(`${url} is answered by another NATS server (id ${id}), not the one we started (id ${launch.id})`);
    const jsm = await jetstreamManager(nc);
    await jsm.getAccountInfo();
    return true;
  } finally {
    await nc.close();
  }
}
