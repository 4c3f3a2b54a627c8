/**
 * HTTP load generator, run as its own process so it never shares the server's event loop.
 *   bun bench/load.ts <url> <key> batch  <runId> <seconds> <concurrency> [maxReadings]
 *   bun bench/load.ts <url> <key> single <runId> <seconds> <ratePerSecond>
 * batch: closed loop, `concurrency` requests in flight, NDJSON bodies of bench/data.ts (250
 * records in runs of 25 per device); stops after `seconds` or `maxReadings`, whichever first.
 * single: open loop at a fixed rate, one JSON record per request; latency is measured from each
 * request's scheduled time, so a stalled server cannot hide its queueing (no coordinated omission).
 * Prints one JSON line: requests, statuses, accepted readings, elapsed, latency percentiles (ms).
 */
import { PER_REQUEST, recordLine, requestBody } from "./data.ts";

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
}

const [url, key, mode, runId, secondsArg, a, b] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string?,
];
const seconds = Number(secondsArg);
const endpoint = `${url}/api/v1/telemetry`;
const statuses: Record<string, number> = {};
const latencies: number[] = [];
let accepted = 0;

async function send(body: string, contentType: string, scheduled: number) {
  try {
    const res = await fetch(endpoint, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": contentType },
      body,
    });
    const json = (await res.json()) as { accepted?: number };
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (res.status === 202) accepted += json.accepted ?? 0;
  } catch {
    statuses[0] = (statuses[0] ?? 0) + 1;
  }
  latencies.push(performance.now() - scheduled);
}

const started = performance.now();
const deadline = started + seconds * 1000;
if (mode === "batch") {
  const concurrency = Number(a);
  const maxRequests = b ? Math.ceil(Number(b) / PER_REQUEST) : Infinity;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline && next < maxRequests)
        await send(requestBody(runId, next++), "application/x-ndjson", performance.now());
    }),
  );
} else {
  const rate = Number(a);
  const inflight: Promise<void>[] = [];
  const total = Math.floor(rate * seconds);
  for (let i = 0; i < total; i++) {
    const scheduled = started + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    // one reading per device here: every request is its own broker message
    // sent up to 1 ms early (sleeps are coarse): then timed from the actual send
    inflight.push(send(recordLine(runId, i, 5_000, 1), "application/json", Math.min(scheduled, performance.now())));
  }
  await Promise.all(inflight);
}
const elapsed = (performance.now() - started) / 1000;
latencies.sort((x, y) => x - y);
const pct = (p: number) =>
  Number((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0).toFixed(2));
const result: LoadResult = {
  mode: mode!,
  requests: latencies.length,
  statuses,
  accepted,
  elapsed,
  p50: pct(0.5),
  p90: pct(0.9),
  p99: pct(0.99),
  max: pct(1),
};
console.log(JSON.stringify(result));
