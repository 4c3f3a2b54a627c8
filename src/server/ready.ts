/** Readiness probes: each bounded in time and cached briefly, so /ready stays cheap under polling. */
import type { Sql } from "../db/client.ts";
import type { Broker } from "../nats/connection.ts";

export function withTimeout(p: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: Timer | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([p.catch(() => false), timeout]).finally(() => clearTimeout(timer));
}

export function pingDatabase(sql: Sql): Promise<boolean> {
  return withTimeout(
    sql`SELECT 1`.then(() => true),
    2_000,
  );
}

/** Connected, and JetStream answers for the stream (not just the socket being up). */
export function streamReachable(broker: Broker, stream: string): Promise<boolean> {
  return withTimeout(
    broker.jsm.streams.info(stream).then(() => true),
    2_000,
  );
}

/** Probes run at most once a second however often /ready is polled (a load balancer may poll hard). */
export function cached(probe: () => Promise<boolean>, ttlMs = 1_000): () => Promise<boolean> {
  let last: { at: number; value: Promise<boolean> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at >= ttlMs) last = { at: now, value: probe() };
    return last.value;
  };
}
