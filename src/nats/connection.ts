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

export interface BrokerOptions {
  name: string;
  timeoutMs?: number;
  /**
   * The server ID the connection must reach (the supervised nats-server's current one): after a
   * reconnect to any other server on that address it counts as disconnected and reconnects again.
   */
  serverId?: () => string | undefined;
}

export async function connectBroker(servers: string, opts: BrokerOptions): Promise<Broker> {
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
  const foreign = () => {
    const expected = opts.serverId?.();
    return expected !== undefined && nc.info?.server_id !== expected
      ? `server ID ${nc.info?.server_id}, not the supervised nats-server's ${expected}`
      : undefined;
  };
  const wrong = foreign();
  if (wrong) {
    await nc.close();
    throw new Error(`${servers} is answered by another NATS server (${wrong})`);
  }
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        connected = false;
        log.warn({ server: s.server }, "disconnected from NATS");
      } else if (s.type === "reconnect") {
        const other = foreign();
        connected = !other;
        if (other) {
          log.error({ server: s.server, other }, "reconnected to a NATS server we did not start; leaving it");
          nc.reconnect().catch(() => {});
        } else log.info({ server: s.server }, "reconnected to NATS");
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
