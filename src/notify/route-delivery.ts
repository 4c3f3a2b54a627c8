/**
 * Route delivery (decision 0610): one worker per active route (route-worker.ts), started,
 * restarted and stopped as the routes table changes (polled; the API also sends a notice on
 * ROUTES_CHANGED so a change is picked up at once). Paused and deleted routes have no worker.
 */
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import type { RouteDestination, RouteFilter } from "../core/routes.ts";
import { STRICT_POLICY, type TargetPolicy } from "../core/target-policy.ts";
import { logger } from "../lib/log.ts";
import { scrapeGauge } from "../lib/metrics.ts";
import type { Broker } from "../nats/connection.ts";
import { decodedCache } from "./route-decoded.ts";
import type { SecretBox } from "./secrets.ts";
import { startRouteWorker, type RouteRow, type RouteStats, type RouteWorker } from "./route-worker.ts";

const log = logger("routes");

/** Core NATS notice the API sends after any route change. */
export const ROUTES_CHANGED_SUBJECT = "telemetry.control.routes_changed";

export interface RouteDeliveryOptions {
  stream: string;
  scheduleMs: readonly number[];
  targets?: TargetPolicy;
  timeoutMs?: number;
  pollMs?: number;
  fetchMax?: number;
  idleMs?: number;
}

export interface RouteDelivery {
  /** Per route id, while it has a worker. */
  stats(): Map<string, RouteStats & { tenant: string; name: string }>;
  /** Reads the routes table now. */
  syncNow(): Promise<void>;
  stop(): Promise<void>;
}

interface Running {
  worker: RouteWorker;
  version: string;
  tenant: string;
  name: string;
}

export function startRouteDelivery(
  deps: { sql: Sql; broker: Broker; secrets: SecretBox },
  o: RouteDeliveryOptions,
): RouteDelivery {
  const send = {
    broker: deps.broker,
    secrets: deps.secrets,
    targets: o.targets ?? STRICT_POLICY,
    timeoutMs: o.timeoutMs ?? 10_000,
  };
  const workerOptions = {
    stream: o.stream,
    scheduleMs: o.scheduleMs,
    fetchMax: o.fetchMax ?? 256,
    idleMs: o.idleMs ?? 1_000,
    decoded: decodedCache(),
  };
  const running = new Map<string, Running>();
  let stopping = false;
  let syncing: Promise<void> | null = null;

  const syncOnce = async () => {
    const rows = await deps.sql`
      SELECT id, tenant, name, filter, destination, secret_encrypted, consumed_seq::float8 AS consumed_seq,
             inflight_to::float8 AS inflight_to,
             updated_at::text AS version
      FROM routes WHERE state = 'active'`;
    const wanted = new Map(rows.map((r) => [r.id as string, r]));
    for (const [id, r] of running) {
      const row = wanted.get(id);
      if (row && row.version === r.version) continue;
      running.delete(id);
      await r.worker.stop();
      log.info(
        { route: id },
        row ? "route changed; restarting its delivery" : "route paused or deleted; delivery stopped",
      );
    }
    if (stopping) return;
    for (const [id, row] of wanted) {
      if (running.has(id)) continue;
      const route: RouteRow = {
        id,
        tenant: row.tenant,
        name: row.name,
        filter: row.filter as RouteFilter,
        destination: row.destination as RouteDestination,
        secretEncrypted: row.secret_encrypted,
        consumedSeq: row.consumed_seq,
        inflightTo: row.inflight_to,
      };
      running.set(id, {
        worker: startRouteWorker(deps.sql, send, route, workerOptions),
        version: row.version,
        tenant: row.tenant,
        name: row.name,
      });
      log.info({ route: id, tenant: row.tenant, name: row.name }, "route delivery started");
    }
  };
  const syncNow = () => {
    syncing ??= syncOnce().finally(() => {
      syncing = null;
    });
    return syncing;
  };

  const timer = setInterval(
    () => void syncNow().catch((err) => log.warn({ err: errorText(err) }, "could not read the routes")),
    o.pollMs ?? 1_000,
  );
  const notices = deps.broker.nc.subscribe(ROUTES_CHANGED_SUBJECT, {
    callback: () => void syncNow().catch((err) => log.warn({ err: errorText(err) }, "could not read the routes")),
  });

  scrapeGauge(
    "telemetry_route_lag_messages",
    "Telemetry-stream messages of the tenant not yet taken by the route",
    ["tenant", "route"],
    async (set) => {
      for (const r of running.values()) set({ tenant: r.tenant, route: r.name }, r.worker.stats.lag);
    },
  );

  return {
    stats: () => new Map([...running].map(([id, r]) => [id, { ...r.worker.stats, tenant: r.tenant, name: r.name }])),
    syncNow,
    async stop() {
      stopping = true;
      clearInterval(timer);
      notices.unsubscribe();
      await syncing?.catch(() => {});
      await Promise.all([...running.values()].map((r) => r.worker.stop()));
      running.clear();
    },
  };
}
