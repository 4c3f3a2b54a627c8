/**
 * HTTP load generator, run as its own process so it never shares the server's event loop.
 *   bun bench/load.ts <target-json> batch  <runId> <seconds> <concurrency> [maxReadings]
 *   bun bench/load.ts <target-json> single <runId> <seconds> <ratePerSecond>
 *   bun bench/load.ts <target-json> closed <runId> <seconds> <concurrency>
 * The target (see Target) says where to send, with which headers, in which format (the bench's
 * NDJSON or the same readings as line protocol, bench/line-protocol.ts) and which status is success.
 * batch: closed loop, `concurrency` requests in flight, bodies of bench/data.ts (250 records in runs
 * of 25 per device); stops after `seconds` or `maxReadings`, whichever first.
 * single: open loop at a fixed rate, one record per request; latency is measured from each
 * request's scheduled time, so a stalled server cannot hide its queueing (no coordinated omission).
 * closed: one record per request, closed loop, `concurrency` requests in flight, for `seconds`.
 * Prints one JSON line: requests, statuses, accepted readings, elapsed, latency percentiles (ms).
 */
import { readdirSync, readFileSync } from "node:fs";
import { PER_REQUEST, recordLine, requestBody } from "./data.ts";
import { lpBody, recordLp } from "./line-protocol.ts";

export interface Target {
  /** Base URL, e.g. http://127.0.0.1:8086 */
  url: string;
  /** Path and query of the write endpoint, e.g. /write?db=bench&precision=ms */
  path: string;
  headers: Record<string, string>;
  format: "ndjson" | "lp";
  /** The success status: 202 (the server's JSON answer, whose `accepted` counts) or 204 (every line written). */
  ok: number;
}

export interface LoadResult {
  mode: string;
  requests: number;
  statuses: Record<string, number>;
  accepted: number;
  elapsed: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** single only: where the slow requests (> 10 ms) come from (decision 0570). */
  tail?: {
    /** p99 and max of how late the generator itself sent a request after its scheduled time, ms. */
    sendLateP99: number;
    sendLateMax: number;
    /** Requests slower than 10 ms, and in how many bursts (runs of slow requests < 5 ms apart in schedule). */
    slow: number;
    bursts: number;
    /** Longest burst, ms of schedule. */
    longestBurstMs: number;
    /** Requests answered out of order while another, sent earlier, was still waiting: max in flight. */
    maxInFlight: number;
    /** The generator's own run-queue wait (waiting for a CPU while runnable), ms per second. */
    genRunQueueMsPerS: number;
    /** The generator's own CPU µs per request (it shares the cores with the server). */
    genCpuUsPerReq: number;
  };
}

let wait0 = 0;
let cpu0: NodeJS.CpuUsage = { user: 0, system: 0 };

/** Single records: one reading per device per request, so each request is its own write. */
const SINGLE_DEVICES = 5_000;

if (import.meta.main) {
  const [targetArg, mode, runId, secondsArg, a, b] = process.argv.slice(2) as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  const result = await run(JSON.parse(targetArg) as Target, mode, runId, Number(secondsArg), Number(a), b);
  console.log(JSON.stringify(result));
}

/** Seconds this process's threads have waited on a run queue (runnable, not running), from /proc. */
function runQueueSeconds(): number {
  let sum = 0;
  try {
    for (const t of readdirSync("/proc/self/task"))
      sum += Number(readFileSync(`/proc/self/task/${t}/schedstat`, "utf8").split(" ")[1] ?? 0) / 1e9;
  } catch {
    return Number.NaN;
  }
  return sum;
}

async function run(
  target: Target,
  mode: string,
  runId: string,
  seconds: number,
  n: number,
  maxReadings: string | undefined,
): Promise<LoadResult> {
  const endpoint = `${target.url}${target.path}`;
  const lp = target.format === "lp";
  const batchType = lp ? "text/plain; charset=utf-8" : "application/x-ndjson";
  const singleType = lp ? "text/plain; charset=utf-8" : "application/json";
  const batchBody = lp ? lpBody : requestBody;
  const single = (i: number) => (lp ? recordLp : recordLine)(runId, i, SINGLE_DEVICES, 1);
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  /** single: [scheduled offset ms, latency ms] of each slow request */
  const slowAt: Array<[number, number]> = [];
  const late: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let accepted = 0;

  async function send(body: string, readings: number, contentType: string, scheduled: number) {
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    try {
      const res = await fetch(endpoint, {
        method: "POST",
        headers: { ...target.headers, "content-type": contentType },
        body,
      });
      const text = await res.text();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status === target.ok)
        accepted += target.ok === 204 ? readings : ((JSON.parse(text) as { accepted?: number }).accepted ?? 0);
    } catch {
      statuses[0] = (statuses[0] ?? 0) + 1;
    }
    inFlight--;
    const latency = performance.now() - scheduled;
    latencies.push(latency);
    if (latency > 10) slowAt.push([scheduled, latency]);
  }

  const started = performance.now();
  const deadline = started + seconds * 1000;
  if (mode === "batch") {
    const maxRequests = maxReadings ? Math.ceil(Number(maxReadings) / PER_REQUEST) : Infinity;
    let next = 0;
    await Promise.all(
      Array.from({ length: n }, async () => {
        while (performance.now() < deadline && next < maxRequests)
          await send(batchBody(runId, next++), PER_REQUEST, batchType, performance.now());
      }),
    );
  } else if (mode === "closed") {
    let next = 0;
    await Promise.all(
      Array.from({ length: n }, async () => {
        while (performance.now() < deadline) await send(single(next++), 1, singleType, performance.now());
      }),
    );
  } else if (mode === "single") {
    const inflight: Promise<void>[] = [];
    const total = Math.floor(n * seconds);
    wait0 = runQueueSeconds();
    cpu0 = process.cpuUsage();
    for (let i = 0; i < total; i++) {
      const scheduled = started + (i * 1000) / n;
      const wait = scheduled - performance.now();
      if (wait > 1) await Bun.sleep(wait);
      // one reading per device here: every request is its own broker message
      // sent up to 1 ms early (sleeps are coarse): then timed from the actual send
      const now = performance.now();
      late.push(now - scheduled);
      inflight.push(send(single(i), 1, singleType, Math.min(scheduled, now)));
    }
    await Promise.all(inflight);
    wait0 = runQueueSeconds() - wait0;
    cpu0 = process.cpuUsage(cpu0);
  } else throw new Error(`unknown mode ${mode}: batch, single or closed`);
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((x, y) => x - y);
  const pctOf = (xs: number[], p: number) =>
    Number((xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0).toFixed(2));
  const pct = (p: number) => pctOf(latencies, p);
  let tail: LoadResult["tail"];
  if (mode === "single") {
    late.sort((x, y) => x - y);
    slowAt.sort((x, y) => x[0] - y[0]);
    let bursts = 0;
    let longest = 0;
    let start = Number.NEGATIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const [at] of slowAt) {
      if (at - last > 5) {
        bursts++;
        start = at;
      }
      last = at;
      longest = Math.max(longest, last - start);
    }
    tail = {
      sendLateP99: pctOf(late, 0.99),
      sendLateMax: pctOf(late, 1),
      slow: slowAt.length,
      bursts,
      longestBurstMs: Math.round(longest),
      maxInFlight,
      genRunQueueMsPerS: Math.round((wait0 * 1000) / elapsed),
      genCpuUsPerReq: Math.round((cpu0.user + cpu0.system) / latencies.length),
    };
  }
  return {
    tail,
    mode,
    requests: latencies.length,
    statuses,
    accepted,
    elapsed,
    p50: pct(0.5),
    p90: pct(0.9),
    p99: pct(0.99),
    max: pct(1),
  };
}
