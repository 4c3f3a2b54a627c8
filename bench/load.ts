/**
 * HTTP load generator, run as its own process so it never shares the server's event loop.
 *   bun bench/load.ts <url> <key> batch  <seconds> <concurrency> <recordsPerRequest> <devices> <runId>
 *   bun bench/load.ts <url> <key> single <seconds> <ratePerSecond> <devices> <runId>
 * batch: closed loop, `concurrency` requests in flight, NDJSON bodies.
 * single: open loop at a fixed rate, one JSON record per request; latency is measured from each
 * request's scheduled time, so a stalled server cannot hide its queueing (no coordinated omission).
 * Prints one JSON line: requests, statuses, accepted readings, latency percentiles (ms).
 */
export {};

const [url, key, mode, secondsArg, a, b, c, d] = process.argv.slice(2);
const seconds = Number(secondsArg);
const endpoint = `${url}/api/v1/telemetry`;
const statuses: Record<number, number> = {};
const latencies: number[] = [];
let accepted = 0;
let seq = 0;
const t0 = Date.UTC(2026, 0, 1);

function record(runId: string, devices: number) {
  const i = seq++;
  return { device_id: `bench-${runId}-${i % devices}`, ts: t0 + Math.floor(i / devices) * 1000, metrics: { temp: 20 + (i % 100) / 10, rssi: -70 }, location: { lat: 52.5 + (i % 1000) / 1e4, lon: 13.4 } };
}

async function send(body: string, contentType: string, scheduled: number) {
  try {
    const res = await fetch(endpoint, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": contentType }, body });
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
  const [concurrency, perRequest, devices, runId] = [Number(a), Number(b), Number(c), d!];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const lines = Array.from({ length: perRequest }, () => JSON.stringify(record(runId, devices))).join("\n");
        await send(lines, "application/x-ndjson", performance.now());
      }
    }),
  );
} else {
  const [rate, devices, runId] = [Number(a), Number(b), c!];
  const inflight: Promise<void>[] = [];
  const total = Math.floor(rate * seconds);
  for (let i = 0; i < total; i++) {
    const scheduled = started + (i * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    inflight.push(send(JSON.stringify(record(runId, devices)), "application/json", scheduled));
  }
  await Promise.all(inflight);
}
const elapsed = (performance.now() - started) / 1000;
latencies.sort((x, y) => x - y);
const pct = (p: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0).toFixed(2));
console.log(JSON.stringify({ mode, requests: latencies.length, statuses, accepted, elapsed, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: pct(1) }));
