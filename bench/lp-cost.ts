/**
 * CPU per reading of the decoding step of each source, in-process, on the bench's readings:
 * NDJSON (parseBody: JSON.parse per line) vs line protocol (parseLineProtocol + mapPoints), each
 * followed by normalizeRecord (event id included), as the endpoints do before admission.
 *   bun bench/lp-cost.ts [requests=400]
 */
import { mapPoints } from "../src/core/line-protocol-map.ts";
import { parseLineProtocol } from "../src/core/line-protocol.ts";
import { normalizeRecord } from "../src/core/record.ts";
import { parseBody } from "../src/ingest/parse.ts";
import { PER_REQUEST, requestBody } from "./data.ts";
import { lpBody } from "./line-protocol.ts";

const requests = Number(process.argv[2] ?? 200);
const nd = Array.from({ length: requests }, (_, n) => requestBody("cost", n));
const lp = Array.from({ length: requests }, (_, n) => lpBody("cost", n));
const now = Date.UTC(2026, 0, 2);
const norm = (value: unknown, identity?: string) =>
  normalizeRecord(value, { tenant: "bench", nowMs: now, maxFutureMs: 1e12, identity });

/** The best of 7 passes over the bodies (a shared machine: the minimum is the cost, the rest is others' load). */
function time(what: string, f: (i: number) => number) {
  for (let i = 0; i < requests; i++) f(i); // warm
  let best = Infinity;
  let n = 0;
  for (let r = 0; r < 7; r++) {
    Bun.gc(true);
    const t = performance.now();
    n = 0;
    for (let i = 0; i < requests; i++) n += f(i);
    best = Math.min(best, ((performance.now() - t) * 1000) / n);
  }
  console.log(`${what}: ${best.toFixed(2)} µs per reading (best of 7 passes of ${n} readings)`);
}

time("ndjson parse", (i) => parseBody(nd[i]!, "ndjson", 10_000).length);
time("ndjson parse+normalize", (i) => {
  let ok = 0;
  for (const it of parseBody(nd[i]!, "ndjson", 10_000)) if ("value" in it && norm(it.value).ok) ok++;
  return ok;
});
time("lp parse", (i) => parseLineProtocol(lp[i]!, { precision: "ms", receivedAtMs: now }).points.length);
time(
  "lp parse+map",
  (i) => mapPoints(parseLineProtocol(lp[i]!, { precision: "ms", receivedAtMs: now }).points).records.length,
);
time("lp parse+map+normalize", (i) => {
  let ok = 0;
  const m = mapPoints(parseLineProtocol(lp[i]!, { precision: "ms", receivedAtMs: now }).points);
  for (const r of m.records) if (norm(r.record, r.identity).ok) ok++;
  return ok;
});
void PER_REQUEST;
