/**
 * The peers phase: the server next to what a self-hoster would install instead, one system at a
 * time, each started fresh (bench/peers.ts), under the same load from bench/load.ts:
 *  - batched: `readings` readings (bench/data.ts: 250 per request in runs of 25 per device, 20,000
 *    devices), 8 connections, closed loop; accepted = readings answered 2xx ÷ the load's time; end
 *    to end = readings ÷ time until every one of them is queryable (polled every 200 ms; the time
 *    the first poll that saw them all was sent);
 *  - single records: one reading per request, 64 connections, closed loop, `singleSeconds`: req/s
 *    answered 2xx and latency percentiles;
 *  - CPU per reading / per request: utime+stime from /proc of each process of the system and its
 *    children (PostgreSQL's backends), from the start of the load until the last of its readings
 *    is queryable (background compaction after that is not counted).
 * The peers get line protocol; the server NDJSON and line protocol (when its endpoint exists).
 */
import { fmt, runLoad, treeCpuSeconds } from "./env.ts";
import type { LoadResult } from "./load.ts";
import { startInfluxDb, startTelemetry, startVictoriaMetrics, type System } from "./peers.ts";

export const PEER_NAMES = ["ndjson", "lp", "influxdb", "victoriametrics"] as const;
export type PeerName = (typeof PEER_NAMES)[number];

interface Spec {
  name: PeerName;
  label: string;
  durability: string;
  start(work: string, executable: string): Promise<System>;
}

const ours = (status: number) =>
  `${status} only after the JetStream PubAck (file store); rows committed in PostgreSQL (fsync on) before the broker ack`;

function debianVersion(pkg: string): string {
  const out = Bun.spawnSync({ cmd: ["dpkg-query", "-W", pkg] }); // "<package>\t<version>"
  return (out.exitCode === 0 && out.stdout.toString().trim().split("\t")[1]) || "?";
}

function specs(): Spec[] {
  return [
    {
      name: "ndjson",
      label: "telemetry (compiled, all roles; NDJSON /api/v1/telemetry)",
      durability: ours(202),
      start: (work, exe) => startTelemetry(work, exe, "ndjson"),
    },
    {
      name: "lp",
      label: "telemetry (compiled, all roles; line protocol /api/v2/write)",
      durability: ours(204),
      start: (work, exe) => startTelemetry(work, exe, "lp"),
    },
    {
      name: "influxdb",
      label: `InfluxDB ${debianVersion("influxdb")} (Debian influxdb; line protocol /write)`,
      durability: "204 after the write is in its WAL, fsynced on every write (wal-fsync-delay 0s, the default)",
      start: (work) => startInfluxDb(work),
    },
    {
      name: "victoriametrics",
      label: `VictoriaMetrics ${debianVersion("victoria-metrics")} (Debian victoria-metrics; line protocol /write)`,
      durability: "204 once buffered in memory; flushed to disk about a second later (a crash loses up to that)",
      start: (work) => startVictoriaMetrics(work),
    },
  ];
}

interface Measured {
  /** The success status (202 for the server's NDJSON, 204 for line protocol). */
  want: number;
  load: LoadResult;
  e2e: number;
  /** Seconds from the load's end (last answer) until the last reading was queryable. */
  lag: number;
  /** CPU µs per reading, per process. */
  cpu: Record<string, number>;
  single: LoadResult;
  /** CPU µs per single-record request answered 2xx, per process. */
  singleCpu: Record<string, number>;
}

export interface PeerResult {
  spec: Spec;
  absent?: string;
  m?: Measured;
}

const ok = (load: LoadResult, status: number) => load.statuses[status] ?? 0;

function cpuOf(system: System): Record<string, number> {
  return Object.fromEntries(Object.entries(system.pids).map(([name, pid]) => [name, treeCpuSeconds(pid)]));
}

function perItem(after: Record<string, number>, before: Record<string, number>, items: number) {
  return Object.fromEntries(Object.keys(after).map((k) => [k, ((after[k]! - before[k]!) / items) * 1e6]));
}

/**
 * Polls until `target` readings are queryable; returns when the poll that saw them all was sent
 * (a count over a million points takes InfluxDB about a second: that is not ingest time).
 */
async function waitQueryable(system: System, target: number, timeoutMs = 900_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const sent = performance.now();
    const n = await system.queryable().catch(() => -1);
    if (n >= target) return sent;
    if (performance.now() > deadline)
      throw new Error(`only ${n} of ${target} readings queryable after ${timeoutMs} ms`);
    await Bun.sleep(200);
  }
}

async function measure(system: System, readings: number, singleSeconds: number): Promise<Measured> {
  const before = await system.queryable();
  const cpu0 = cpuOf(system);
  const t0 = performance.now();
  const load = await runLoad(system.target, "batch", "peers", 3_600, 8, readings);
  const loadEnd = performance.now();
  const doneAt = await waitQueryable(system, before + load.accepted);
  const cpu1 = cpuOf(system);
  const single = await runLoad(system.target, "closed", "peers-single", singleSeconds, 64);
  // their CPU counted until they are queryable too (the server's writer works after the 202)
  await waitQueryable(system, before + load.accepted + single.accepted);
  const cpu2 = cpuOf(system);
  return {
    want: system.target.ok,
    load,
    e2e: load.accepted / ((doneAt - t0) / 1000),
    lag: (doneAt - loadEnd) / 1000,
    cpu: perItem(cpu1, cpu0, load.accepted),
    single,
    singleCpu: perItem(cpu2, cpu1, Math.max(1, ok(single, system.target.ok))),
  };
}

/** Runs the selected systems one after another; a system that cannot start or run fails the phase. */
export async function peersPhase(
  work: string,
  executable: string,
  selected: ReadonlySet<PeerName>,
  readings: number,
  singleSeconds: number,
  step: (what: string) => void,
): Promise<PeerResult[]> {
  const results: PeerResult[] = [];
  for (const spec of specs().filter((s) => selected.has(s.name))) {
    step(`peers: ${spec.label}: ${fmt(readings)} readings batched, then single records ${singleSeconds} s`);
    const system = await spec.start(work, executable);
    try {
      if (spec.name === "lp" && (await endpointMissing(system))) {
        console.error("[bench] line protocol endpoint not present (POST /api/v2/write answered 404): skipped");
        results.push({ spec, absent: "line protocol endpoint not present" });
        continue;
      }
      results.push({ spec, m: await measure(system, readings, singleSeconds) });
    } finally {
      await system.stop();
    }
  }
  return results;
}

async function endpointMissing(system: System): Promise<boolean> {
  const { url, path, headers } = system.target;
  const res = await fetch(`${url}${path}`, { method: "POST", headers, body: "" });
  await res.arrayBuffer();
  return res.status === 404;
}

const us = (x: number) => x.toFixed(1);
const total = (cpu: Record<string, number>) => Object.values(cpu).reduce((s, v) => s + v, 0);
const cpuCell = (cpu: Record<string, number>) => {
  const parts = Object.entries(cpu);
  const each = parts.map(([k, v]) => `${k} ${us(v)}`).join(", ");
  return parts.length === 1 ? `${us(total(cpu))} µs` : `${us(total(cpu))} µs (${each})`;
};
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const accepted = (m: Measured) => m.load.accepted / m.load.elapsed;
const rps = (m: Measured) => ok(m.single, m.want) / m.single.elapsed;

/** The phase's markdown table: one row per system, then telemetry ÷ InfluxDB. */
export function peersTable(results: readonly PeerResult[], readings: number, singleSeconds: number): string {
  const lines = [
    `Batched: ${fmt(readings)} readings, 250 per request, 8 connections, closed loop. Single records: 64 connections, closed loop, ${singleSeconds} s. End to end = until every reading is queryable.`,
    "",
    "| System | Durability | Accepted | End to end | Single records: req/s, p99 | CPU per reading (batched) | CPU per single-record request |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const { spec, absent, m } of results) {
    if (!m) {
      lines.push(`| ${spec.label} | ${spec.durability} | ${absent} | | | | |`);
      continue;
    }
    const notOk = (l: LoadResult) => l.requests - ok(l, m.want);
    const flag = (l: LoadResult) =>
      notOk(l) ? ` (${fmt(notOk(l))} of ${fmt(l.requests)} not ${m.want}: ${JSON.stringify(l.statuses)})` : "";
    lines.push(
      `| ${spec.label} | ${spec.durability} | ${fmt(accepted(m))} readings/s, request p99 ${m.load.p99} ms${flag(m.load)} | **${fmt(m.e2e)} readings/s** (all queryable ${m.lag.toFixed(1)} s after the last answer) | ${fmt(rps(m))} req/s, p99 ${m.single.p99} ms${flag(m.single)} | ${cpuCell(m.cpu)} | ${cpuCell(m.singleCpu)} |`,
    );
  }
  const influx = results.find((r) => r.spec.name === "influxdb")?.m;
  for (const r of results) {
    if (!influx || !r.m || (r.spec.name !== "ndjson" && r.spec.name !== "lp")) continue;
    const m = r.m;
    const name = r.spec.name === "ndjson" ? "telemetry NDJSON" : "telemetry line protocol";
    lines.push(
      `| Ratio: ${name} / InfluxDB | | ${ratio(accepted(m), accepted(influx))} | **${ratio(m.e2e, influx.e2e)}** | ${ratio(rps(m), rps(influx))} req/s, p99 ${ratio(m.single.p99, influx.single.p99)} | ${ratio(total(m.cpu), total(influx.cpu))} | ${ratio(total(m.singleCpu), total(influx.singleCpu))} |`,
    );
  }
  lines.push("", "Ratios: above 1 is better for rates, below 1 for p99 and CPU.");
  return [...lines, ...targets(results, influx)].join("\n");
}

/** Issue 17's targets that this phase measures, for each protocol of the server. */
function targets(results: readonly PeerResult[], influx: Measured | undefined): string[] {
  const rows: string[] = [];
  const yes = (met: boolean) => (met ? "yes" : "**no**");
  for (const r of results) {
    if (!r.m || (r.spec.name !== "ndjson" && r.spec.name !== "lp")) continue;
    const m = r.m;
    const name = r.spec.name === "ndjson" ? "NDJSON" : "line protocol";
    if (influx) {
      rows.push(
        `| ${name}: batched end to end ≥ InfluxDB's | ${ratio(m.e2e, influx.e2e)} (${fmt(m.e2e)} vs ${fmt(influx.e2e)} readings/s) | ${yes(m.e2e >= influx.e2e)} |`,
        `| ${name}: single records, closed loop, req/s ≥ InfluxDB's | ${ratio(rps(m), rps(influx))} (${fmt(rps(m))} vs ${fmt(rps(influx))}) | ${yes(rps(m) >= rps(influx))} |`,
      );
    }
    rows.push(
      `| ${name}: batched end to end ≥ 100,000 readings/s (milestone) | ${fmt(m.e2e)} | ${yes(m.e2e >= 100_000)} |`,
      `| ${name}: CPU per reading, all processes, batched ≤ 10 µs | ${us(total(m.cpu))} µs | ${yes(total(m.cpu) <= 10)} |`,
      `| ${name}: CPU per single-record request in the server process (all roles, until queryable) ≤ 40 µs | ${us(m.singleCpu.server ?? Number.NaN)} µs | ${yes((m.singleCpu.server ?? Infinity) <= 40)} |`,
    );
  }
  return rows.length ? ["", "| Target (issue 17) | Measured | Met |", "| --- | --- | --- |", ...rows] : [];
}
