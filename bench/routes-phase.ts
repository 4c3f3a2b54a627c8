/**
 * Routes phase (issue 18's "throughput with three active routes"): the compiled server, all roles
 * in one process, batched NDJSON end to end with no message route, then with ROUTES (3) active
 * routes that each republish every reading to NATS (nothing filtered out: the most a route does
 * per reading). Each run gets a fresh nats-server and PostgreSQL; the routes' own catch-up (until
 * every route's lag is 0) is timed too. Ratios: with routes ÷ without, accepted and end to end.
 */
import { join } from "node:path";
import { startLocalNats } from "../src/embedded/nats-server.ts";
import { startLocalPostgres } from "../src/embedded/postgres.ts";
import { waitFor } from "../src/embedded/process.ts";
import { cpuSeconds, fmt, KEY, startServer, type ServerHandle } from "./env.ts";
import { batchedEndToEnd, type Row } from "./phases.ts";

export const ROUTES = 3;

/** The route lag gauges of the server's /metrics: one per running route delivery. */
async function routeLags(url: string): Promise<number[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^telemetry_route_lag_messages\{[^}]*\} (\d+)/gm)].map((m) => Number(m[1]));
}

/** Counters so far: the memory governor's forced collections (count, event-loop seconds) and route batches sent. */
async function counters(url: string): Promise<{ n: number; s: number; batches: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sum = (name: string) =>
    [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} ([\\d.e+-]+)`, "gm"))].reduce((a, m) => a + Number(m[1]), 0);
  return {
    n: sum("telemetry_memory_forced_gc_total"),
    s: sum("telemetry_memory_forced_gc_seconds_total"),
    batches: sum("telemetry_route_deliveries_total"),
  };
}

async function addRoutes(server: ServerHandle, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${server.url}/api/v1/routes`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ name: `bench-${i}`, filter: {}, destination: { type: "nats" } }),
    });
    if (res.status !== 201) throw new Error(`creating route ${i}: ${res.status} ${await res.text()}`);
  }
  await waitFor(async () => (await routeLags(server.url)).length === n, {
    timeoutMs: 30_000,
    what: `${n} route deliveries running`,
  });
}

async function oneRun(work: string, executable: string, routes: number, seconds: number, connections: number) {
  await using nats = await startLocalNats({ storeDir: join(work, `routes-${routes}-nats`) });
  await using pg = await startLocalPostgres({ dataDir: join(work, `routes-${routes}-pg`) });
  const server = await startServer(executable, {
    NATS_URL: nats.url,
    DATABASE_URL: pg.url,
    TELEMETRY_DATA_DIR: join(work, `routes-${routes}-data`),
  });
  try {
    await addRoutes(server, routes);
    const gc0 = await counters(server.url);
    const cpu0 = cpuSeconds(server.pid);
    const t0 = performance.now();
    const e2e = await batchedEndToEnd(server, nats.pid!, seconds, connections, `routes${routes}`);
    await waitFor(async () => (await routeLags(server.url)).every((lag) => lag === 0), {
      timeoutMs: 900_000,
      intervalMs: 200,
      what: "every route caught up",
    });
    const routedS = (performance.now() - t0) / 1000;
    const cpuUs = ((cpuSeconds(server.pid) - cpu0) / e2e.accepted) * 1e6;
    const gc1 = await counters(server.url);
    return { ...e2e, routedS, cpuUs, gc: { n: gc1.n - gc0.n, s: gc1.s - gc0.s }, batches: gc1.batches - gc0.batches };
  } finally {
    await server.stop();
  }
}

export async function routesPhase(
  work: string,
  executable: string,
  seconds: number,
  connections: number,
  step: (what: string) => void,
): Promise<Row[]> {
  step(`routes: batched end to end, no route, ${seconds} s`);
  const none = await oneRun(work, executable, 0, seconds, connections);
  step(`routes: batched end to end, ${ROUTES} NATS routes matching every reading, ${seconds} s`);
  const some = await oneRun(work, executable, ROUTES, seconds, connections);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const gcRow = (label: string, r: typeof none): Row => [
    `  ... ${label}, from the start until every route caught up: server CPU, forced collections`,
    `${r.cpuUs.toFixed(1)} µs/reading`,
    `${r.gc.n} forced collections, ${r.gc.s.toFixed(2)} s of event loop`,
  ];
  return [
    ...none.rows.map(([m, r, d]): Row => [`Routes: none. ${m.trim()}`, r, d]),
    ...some.rows.map(([m, r, d]): Row => [`Routes: ${ROUTES} to NATS. ${m.trim()}`, r, d]),
    gcRow("no route", none),
    gcRow(`${ROUTES} routes`, some),
    [
      `  ... every route caught up (lag 0)`,
      `${some.routedS.toFixed(1)} s after the start`,
      `${fmt(some.accepted * ROUTES)} readings republished in ${fmt(some.batches)} batches`,
    ],
    [
      `Ratio: ${ROUTES} routes / none, accepted and end to end`,
      `**${ratio(some.acceptedPerS, none.acceptedPerS)}, ${ratio(some.e2e, none.e2e)}**`,
      "issue 18: within 10 % (≥ 0.90×), or what it costs (docs/routes.md)",
    ],
  ];
}
