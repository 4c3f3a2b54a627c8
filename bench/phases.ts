/**
 * The server's phases: batched end to end, single records at a fixed rate, and a 1M backlog built
 * with the database stopped (RSS), then drained (writer rate). Each returns table rows and figures.
 */
import type { LocalPostgres } from "../src/embedded/types.ts";
import { committed, cpuSeconds, fmt, rssMiB, runLoad, waitForCommitted, type ServerHandle } from "./env.ts";

export type Row = [string, string, string];

export async function batchedEndToEnd(
  server: ServerHandle,
  natsPid: number,
  seconds: number,
  connections: number,
  runId: string,
): Promise<{ rows: Row[]; accepted: number; acceptedPerS: number; e2e: number }> {
  const before = await committed(server.url);
  const cpu0 = [cpuSeconds(server.pid), cpuSeconds(natsPid)];
  const t0 = performance.now();
  const load = await runLoad(server.url, "batch", runId, seconds, connections);
  const { doneAt } = await waitForCommitted(server.url, before + load.accepted);
  const drained = (doneAt - t0) / 1000;
  const e2e = load.accepted / drained;
  const perReading = (pid: number, i: number) =>
    `${(((cpuSeconds(pid) - cpu0[i]!) / load.accepted) * 1e6).toFixed(1)} µs`;
  const cpu = `CPU per reading: server ${perReading(server.pid, 0)}, nats-server ${perReading(natsPid, 1)}`;
  const refused = load.requests - (load.statuses["202"] ?? 0);
  return {
    accepted: load.accepted,
    acceptedPerS: load.accepted / load.elapsed,
    e2e,
    rows: [
      [
        `Batched NDJSON, 250 records/request (runs of 25 per device), ${connections} connections, ${seconds} s: accepted (202)`,
        `${fmt(load.accepted / load.elapsed)} readings/s`,
        `${fmt(load.requests)} requests (${refused} not 202), p50 ${load.p50} ms, p99 ${load.p99} ms`,
      ],
      [
        "  ... end to end (accepted and committed in PostgreSQL)",
        `**${fmt(e2e)} readings/s**`,
        `${fmt(load.accepted)} readings, last commit ${drained.toFixed(1)} s after the start; ${cpu}`,
      ],
    ],
  };
}

export async function singleRecords(
  server: ServerHandle,
  seconds: number,
  rate: number,
  runId: string,
): Promise<{ rows: Row[]; p99: number; throughput: number }> {
  const load = await runLoad(server.url, "single", runId, seconds, rate);
  const ok = load.statuses["202"] ?? 0;
  const throughput = ok / load.elapsed;
  return {
    p99: load.p99,
    throughput,
    rows: [
      [
        `Single-record POST, open loop at a fixed ${fmt(rate)} req/s, ${seconds} s`,
        `p50 ${load.p50} ms, **p99 ${load.p99} ms**`,
        `${fmt(throughput)} req/s answered 202 (${ok}/${load.requests}), p90 ${load.p90} ms, max ${load.max} ms`,
      ],
    ],
  };
}

/**
 * PostgreSQL stopped, `readings` pushed through ingest (202s, so all in JetStream), RSS sampled
 * every 250 ms until 3 s after the last one; then PostgreSQL starts and the writer drains the
 * backlog: its rate is counted from its first commit to its last.
 */
export async function backlogAndDrain(
  server: ServerHandle,
  pg: LocalPostgres,
  readings: number,
  runId: string,
): Promise<{ rows: Row[]; peakRss: number; drain: number }> {
  const idle = rssMiB(server.pid);
  await pg.stop();
  let peak = idle;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(server.pid))), 250);
  const before = await committed(server.url);
  const load = await runLoad(server.url, "batch", runId, 600, 8, readings);
  await Bun.sleep(3_000);
  clearInterval(sampler);
  peak = Math.max(peak, rssMiB(server.pid));
  await pg.start();
  const started = performance.now();
  const { doneAt, firstAt } = await waitForCommitted(server.url, before + load.accepted);
  const drain = load.accepted / ((doneAt - firstAt) / 1000);
  return {
    peakRss: peak,
    drain,
    rows: [
      [
        `RSS of the server with ${fmt(load.accepted)} readings backed up (PostgreSQL stopped)`,
        `**${peak.toFixed(0)} MiB** peak`,
        `${idle.toFixed(0)} MiB before; backlog pushed at ${fmt(load.accepted / load.elapsed)} readings/s (${load.statuses["202"] ?? 0}/${load.requests} requests 202)`,
      ],
      [
        "Writer drain of that backlog (PostgreSQL back)",
        `**${fmt(drain)} readings/s**`,
        `first commit ${((firstAt - started) / 1000).toFixed(1)} s after PostgreSQL started (retry backoff), last ${((doneAt - started) / 1000).toFixed(1)} s`,
      ],
    ],
  };
}
