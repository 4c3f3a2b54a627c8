/**
 * CPU of the server's own JavaScript per single-record request, without sockets (decision 0545):
 * the real HTTP app (http/app buildApp, the ingest routes behind requireTenant) called in process
 * through `app.fetch`, one bench record per POST /api/v1/telemetry, awaited one after another.
 * What is not real: the key resolver (hashKey of the key, then a fixed tenant: the key cache's
 * hit path without its LRU), the device registry (admits every device), and the publisher
 * (PubAck in a microtask). Garbage collection is included. Checkouts alternate per round:
 *   bun bench/ingest-cost.ts [requests=50000] [rounds=5] [other checkout...]
 */
import { resolve } from "node:path";
import { recordLine } from "./data.ts";

const [requestsArg = "50000", roundsArg = "5", ...others] = process.argv.slice(2);
const requests = Number(requestsArg);
const rounds = Number(roundsArg);
const dirs = [resolve(import.meta.dir, ".."), ...others.map((d) => resolve(d))];

async function appOf(dir: string) {
  const { buildApp } = await import(`${dir}/src/http/app.ts`);
  const { mountGroup } = await import(`${dir}/src/http/route.ts`);
  const { requireTenant } = await import(`${dir}/src/http/auth.ts`);
  const { ingestRoutes } = await import(`${dir}/src/ingest/sources/http-json.ts`);
  const { RateLimiter } = await import(`${dir}/src/tenants/limits.ts`);
  const { hashKey } = await import(`${dir}/src/tenants/keys.ts`);
  (await import(`${dir}/src/lib/log.ts`)).configureLogger("warn", true); // as the bench's servers run
  const tenant = {
    id: "bench",
    status: "active",
    suspendedReason: null,
    devicePolicy: "auto",
    limits: {
      maxDevices: 1e9,
      ratePerSecond: 1e9,
      burst: 1e9,
      deviceRatePerSecond: 1e9,
      deviceBurst: 1e9,
      maxRecordsPerRequest: 10_000,
    },
  };
  let seq = 0;
  const broker = {
    connected: true,
    publisher: { publish: async () => ({ stream: "TELEMETRY", seq: ++seq, duplicate: false }) },
  };
  const devices = { admit: async () => ({ refused: new Map() }) };
  const keyResolver = async (key: string) => {
    hashKey(key);
    return { status: "ok", keyId: "k", tenant, kind: "tenant", device: null };
  };
  const options = {
    stream: "TELEMETRY",
    dlqStream: "TELEMETRY_DLQ",
    maxBodyBytes: 1 << 20,
    recordsPerMessage: 100,
    maxFutureMs: 3_600_000,
    publishTimeoutMs: 5_000,
  };
  const deps = { broker, devices, limits: new RateLimiter(), options };
  return buildApp([mountGroup("tenant", requireTenant(keyResolver), ingestRoutes, deps)], [], () => false);
}

const env = { requestIP: () => ({ address: "127.0.0.1" }) };
const apps = await Promise.all(dirs.map(appOf));
let n = 0;
async function pass(app: { fetch: (r: Request, e: unknown) => Promise<Response> }, count: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const body = recordLine("cost", n++, 5_000, 1);
    // With its Content-Length, as fetch sends it (the server's one-read path, not the stream).
    const req = new Request("http://127.0.0.1/api/v1/telemetry", {
      method: "POST",
      headers: {
        authorization: "Bearer bench-key-0123456789abcdef",
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(body)),
      },
      body,
    });
    const res = await app.fetch(req, env);
    if (res.status !== 202) throw new Error(`status ${res.status}: ${await res.text()}`);
    await res.text();
  }
  return ((performance.now() - started) * 1e6) / count;
}

for (const app of apps) await pass(app, 5_000); // warm-up (JIT)
for (let r = 0; r < rounds; r++) {
  const row: Record<string, number> = {};
  for (let k = 0; k < apps.length; k++) row[dirs[k]!] = Math.round(await pass(apps[k]!, requests));
  console.log(JSON.stringify({ round: r, nsPerRequest: row }));
}
