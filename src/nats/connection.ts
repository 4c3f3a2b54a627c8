/**
 * One NATS connection per process, reconnecting forever. `connected` reflects the last status
 * event, so ingest can answer 503 at once while the broker is away instead of queueing publishes.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { logger } from "../lib/log.ts";
import { AckedPublisher } from "./publisher.ts";

const log = logger("nats");

export interface Broker {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Hand-pipelined JetStream publishing (created on first use); see publisher.ts. */
  readonly publisher: AckedPublisher;
  /** False between a disconnect and the following reconnect. */
  readonly connected: boolean;
  close(): Promise<void>;
}

export async function connectBroker(servers: string, opts: { name: string; timeoutMs?: number }): Promise<Broker> {
  const nc = await connect({
    servers: servers.split(","),
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 10_000,
    maxPingOut: 2,
    timeout: opts.timeoutMs ?? 5_000,
  });
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        connected = false;
        log.warn({ server: s.server }, "disconnected from NATS");
      } else if (s.type === "reconnect") {
        connected = true;
        log.info({ server: s.server }, "reconnected to NATS");
      }
    }
  })();
  const js = jetstream(nc, { timeout: opts.timeoutMs ?? 5_000 });
  // No API check here: ensureStream is the first JetStream call, and it waits for a cluster still electing its leaders.
  const jsm = await jetstreamManager(nc, { timeout: opts.timeoutMs ?? 5_000, checkAPI: false });
  let publisher: AckedPublisher | undefined;
  return {
    nc,
    js,
    jsm,
    get publisher() {
      return (publisher ??= new AckedPublisher(nc, opts.timeoutMs ?? 5_000));
    },
    get connected() {
      return connected && !nc.isClosed();
    },
    async close() {
      publisher?.close();
      if (nc.isClosed()) return;
      await nc.drain().catch(() => nc.close());
    },
  };
}
