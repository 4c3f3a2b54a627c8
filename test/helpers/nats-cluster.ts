/**
 * A NATS cluster on loopback for tests: `size` nats-servers with JetStream (fresh store dirs),
 * routes between all of them, random ports. Each node is supervised on its own so a test can
 * kill -9 one and start it again on the same ports and store. Use `await using` (or push it to a
 * cleanup list): every node stops and the temp dir goes away even when the test throws; the
 * nodes also get a parent-death signal in case the test process dies.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { findNatsServer } from "../../src/embedded/nats-server.ts";
import { freePort, Supervisor, waitFor } from "../../src/embedded/process.ts";
import type { Supervised } from "../../src/embedded/types.ts";
import { logger } from "../../src/lib/log.ts";

const log = logger("nats-cluster");

export interface NatsNode extends Supervised {
  /** server_name, e.g. "n1" (what the JetStream API reports as leader / replica). */
  readonly name: string;
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
}

export interface NatsCluster extends AsyncDisposable {
  readonly nodes: NatsNode[];
  /** Every node's client URL, comma-separated (what NATS_URL takes). */
  readonly url: string;
  readonly dir: string;
  node(name: string): NatsNode;
  /** Runs fn with a JetStream manager connected to the running nodes; closes the connection after. */
  withJsm<T>(fn: (jsm: JetStreamManager, nc: NatsConnection) => Promise<T>): Promise<T>;
  /** Server name of the stream's leader (or the consumer's, when `consumer` is given). */
  leader(stream: string, consumer?: string): Promise<string>;
  /** Resolves once the stream (and consumer) has a leader and all its replicas, each current. */
  settled(stream: string, consumer?: string, timeoutMs?: number): Promise<void>;
}

export async function startNatsCluster(opts: { size?: number; name?: string } = {}): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  // Same prefix as services.ts, so a dead test process's dir is swept by later runs.
  const dir = await mkdtemp(join(tmpdir(), `telemetry-nats-${process.pid}-`));
  const binary = findNatsServer();
  const nodes: NatsNode[] = [];
  try {
    const ports = await distinctPorts(size * 2);
    const routes = ports.slice(size).map((p) => `nats-route://127.0.0.1:${p}`);
    for (let i = 0; i < size; i++) {
      nodes.push(
        makeNode(binary, dir, {
          name: `n${i + 1}`,
          port: ports[i]!,
          clusterPort: ports[size + i]!,
          cluster: opts.name ?? "telemetry-test",
          routes,
        }),
      );
    }
    // All at once: JetStream answers only when a quorum of the meta group is up.
    await Promise.all(nodes.map((n) => n.start()));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill().catch(() => {})));
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const url = nodes.map((n) => n.url).join(",");

  const withJsm = async <T>(fn: (jsm: JetStreamManager, nc: NatsConnection) => Promise<T>): Promise<T> => {
    const servers = nodes.filter((n) => n.running).map((n) => n.url);
    const nc = await connect({ servers, reconnect: false, timeout: 2_000 });
    try {
      return await fn(await jetstreamManager(nc, { timeout: 5_000 }), nc);
    } finally {
      await nc.close();
    }
  };

  return {
    nodes,
    url,
    dir,
    node(name) {
      const found = nodes.find((n) => n.name === name);
      if (!found) throw new Error(`no node named ${name} (have ${nodes.map((n) => n.name).join(", ")})`);
      return found;
    },
    withJsm,
    async leader(stream, consumer) {
      const leader = await withJsm(
        async (jsm) =>
          (consumer ? await jsm.consumers.info(stream, consumer) : await jsm.streams.info(stream)).cluster?.leader,
      );
      if (!leader) throw new Error(`${consumer ? `consumer ${stream}/${consumer}` : `stream ${stream}`} has no leader`);
      return leader;
    },
    async settled(stream, consumer, timeoutMs = 60_000) {
      await waitFor(
        () =>
          withJsm(async (jsm) => {
            const s = await jsm.streams.info(stream);
            const followers = (s.config.num_replicas || 1) - 1; // a consumer has its stream's replicas
            const infos = [s, ...(consumer ? [await jsm.consumers.info(stream, consumer)] : [])];
            return infos.every(
              (i) =>
                i.cluster?.leader &&
                (i.cluster.replicas ?? []).length === followers &&
                (i.cluster.replicas ?? []).every((r) => r.current && !r.offline),
            );
          }),
        {
          timeoutMs,
          intervalMs: 200,
          what: `${stream}${consumer ? `/${consumer}` : ""} led, with every replica current`,
        },
      );
    },
    async [Symbol.asyncDispose]() {
      try {
        await Promise.all(nodes.map((n) => n.stop().catch(() => n.kill())));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

interface NodeSpec {
  name: string;
  port: number;
  clusterPort: number;
  cluster: string;
  routes: string[];
}

function makeNode(binary: string, root: string, spec: NodeSpec): NatsNode {
  const storeDir = join(root, spec.name);
  mkdirSync(storeDir, { recursive: true, mode: 0o700 });
  const configFile = join(storeDir, "nats-server.conf");
  writeFileSync(configFile, renderConfig(spec, storeDir));
  const url = `nats://127.0.0.1:${spec.port}`;
  const supervisor = new Supervisor({
    name: `nats-server ${spec.name}`,
    log,
    prepare: async () => {},
    spawn: () => ({
      cmd: [binary, "-c", configFile],
      cwd: storeDir,
      parentDeathSignal: "SIGKILL",
      onLine: (line) => log.debug(line),
    }),
    // Answers only once the node is routed to a quorum of the cluster (the meta leader serves account info).
    ready: (signal) =>
      waitFor(() => jetStreamAnswers(url), {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: `JetStream at ${url} (${spec.name})`,
        signal,
      }),
    stopSignal: "SIGTERM",
    stopGraceMs: 10_000,
  });
  return Object.assign(supervisor, { name: spec.name, url, port: spec.port, clusterPort: spec.clusterPort });
}

function renderConfig(s: NodeSpec, storeDir: string): string {
  const q = JSON.stringify;
  return `${[
    `server_name: ${q(s.name)}`,
    `listen: ${q(`127.0.0.1:${s.port}`)}`,
    `pid_file: ${q(join(storeDir, "nats-server.pid"))}`,
    "jetstream {",
    `  store_dir: ${q(storeDir)}`,
    "}",
    "cluster {",
    `  name: ${q(s.cluster)}`,
    `  listen: ${q(`127.0.0.1:${s.clusterPort}`)}`,
    `  routes: [${s.routes.map((r) => q(r)).join(", ")}]`,
    "}",
  ].join("\n")}\n`;
}

async function jetStreamAnswers(url: string): Promise<boolean> {
  const nc = await connect({ servers: url, reconnect: false, timeout: 1_000 });
  try {
    await (await jetstreamManager(nc, { timeout: 2_000 })).getAccountInfo();
    return true;
  } finally {
    await nc.close();
  }
}

async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}
