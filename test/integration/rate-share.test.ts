/**
 * A tenant's rate limit holds across several ingest processes (decision 0560): three real
 * `telemetry serve --roles ingest` processes on one nats-server and one database, each hammered
 * by its own client for the same tenant. Together they accept the tenant's rate plus its burst
 * (and one request's debt per process), not three times that; after one is killed (-9) the other
 * two get its share back within the stale bound, and after a clean stop the last one has it all.
 * Shares follow demand: one busy process among idle ones gets most of the rate, not a third.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { KEY, kill9, spawnServer, stopAll, type ServerProcess } from "../fault/harness.ts";

const RATE = 200; // records/s of the tenant
const BURST = 200;
const PER_REQUEST = 10;
const INTERVAL_MS = 250; // TELEMETRY_RATE_SHARING
/** 3 intervals without an announcement: the process is gone (src/tenants/rate-share.ts). */
const STALE_MS = 3 * INTERVAL_MS;

let nats: Awaited<ReturnType<typeof startNats>>;
let env: Record<string, string>;

beforeAll(async () => {
  nats = await startNats();
  env = {
    NATS_URL: nats.url,
    DATABASE_URL: await freshDatabase("rate_share"),
    TELEMETRY_TENANT_RATE: String(RATE),
    TELEMETRY_TENANT_BURST: String(BURST),
    TELEMETRY_RATE_SHARING: `${INTERVAL_MS}ms`,
  };
}, 60_000);

afterAll(async () => {
  await stopAll();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

let seq = 0;
/** One closed-loop client per server until `until`: records accepted (202 bodies); a 429 is retried 10 ms later. */
async function hammer(servers: ServerProcess[], until: number): Promise<number[]> {
  return Promise.all(
    servers.map(async (s, k) => {
      let accepted = 0;
      while (Date.now() < until) {
        const records = Array.from({ length: PER_REQUEST }, (_, i) => ({
          device_id: `d-${k}-${i}`,
          ts: BASE_TS + ++seq,
          metrics: { v: 1 },
        }));
        const res = await fetch(`${s.url}/api/v1/telemetry`, {
          method: "POST",
          headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
          body: JSON.stringify(records),
        });
        const body = (await res.json()) as { accepted?: number };
        if (res.status === 202) accepted += body.accepted ?? 0;
        else if (res.status === 429) await Bun.sleep(10);
        else throw new Error(`${s.name}: ${res.status} ${JSON.stringify(body)}`);
      }
      return accepted;
    }),
  );
}

/** Processes announced in the KV bucket (keys present). */
async function announced(): Promise<number> {
  const nc = await connect({ servers: nats.url });
  try {
    const info = await (await jetstreamManager(nc)).streams.info("KV_telemetry_rates", { subjects_filter: ">" });
    return Object.keys(info.state.subjects ?? {}).length;
  } finally {
    await nc.close();
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

test("three ingest processes together stay within the tenant's limit; the survivors regain a stopped one's share", async () => {
  const servers: ServerProcess[] = [];
  for (const name of ["ingest#1", "ingest#2", "ingest#3"]) servers.push(await spawnServer(env, "ingest", { name }));
  await check(async () => (await announced()) === 3, { what: "three processes announced", timeoutMs: 10_000 });

  // Only ingest#1 busy, the others idle: once its demand is announced it gets most of the rate, not a third.
  await hammer(servers.slice(0, 1), Date.now() + 2 * INTERVAL_MS);
  const busy = (await hammer(servers.slice(0, 1), Date.now() + 2_000))[0]!;
  console.log(`1 busy of 3 processes, 2 s: accepted ${busy}`);
  expect(busy).toBeGreaterThanOrEqual(0.8 * RATE * 2);
  expect(busy).toBeLessThanOrEqual(RATE * 2 + BURST + PER_REQUEST);

  // Three processes for 4 s: the tenant's rate × 4 s + its burst + one request's debt per process.
  const window = 4;
  const three = await hammer(servers, Date.now() + window * 1000);
  const total = sum(three);
  console.log(`3 processes, ${window} s: accepted ${three.join(" + ")} = ${total} (limit ${RATE}/s, burst ${BURST})`);
  expect(total).toBeLessThanOrEqual(RATE * window + BURST + 3 * PER_REQUEST);
  expect(total).toBeGreaterThanOrEqual(0.75 * RATE * window);
  for (const n of three) expect(n).toBeGreaterThan(0.15 * RATE * window); // each got a share

  // ingest#3 killed (-9, no goodbye): within the stale bound plus an interval the other two split the whole rate.
  await kill9(servers[2]!);
  const two = servers.slice(0, 2);
  await hammer(two, Date.now() + STALE_MS + INTERVAL_MS);
  const after = 3;
  const regained = await hammer(two, Date.now() + after * 1000);
  console.log(`2 processes after a kill, ${after} s: accepted ${regained.join(" + ")} = ${sum(regained)}`);
  // Without the dead one's share given back they would get 2/3 of the rate.
  expect(sum(regained)).toBeGreaterThanOrEqual(0.85 * RATE * after);
  expect(sum(regained)).toBeLessThanOrEqual(RATE * after + BURST + 2 * PER_REQUEST);

  // ingest#2 stopped cleanly (SIGTERM: it leaves the bucket at once): ingest#1 alone has the whole limit.
  await servers[1]!.child.stop();
  await check(async () => (await announced()) === 1, { what: "only ingest#1 announced", timeoutMs: 5_000 });
  const one = servers.slice(0, 1);
  await hammer(one, Date.now() + INTERVAL_MS);
  const alone = (await hammer(one, Date.now() + 2_000))[0]!;
  console.log(`1 process after a clean stop, 2 s: accepted ${alone}`);
  expect(alone).toBeGreaterThanOrEqual(0.85 * RATE * 2);
}, 120_000);
