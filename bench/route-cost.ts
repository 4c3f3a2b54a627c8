/**
 * CPU per reading of message routes' own work, in one process, against a real nats-server: ROUTES
 * routes (default 3) each take the same stream messages (envelopes of 25 readings, 256 per take like
 * route-worker.ts), decode them through the shared cache (route-decoded.ts), match a filter that
 * keeps everything, cut batches and republish every reading to NATS (route-send.ts, flush per
 * batch). Not included: the JetStream deliveries of each route's consumer and the take's two SQL
 * statements (bench/routes-phase.ts measures the whole server). Garbage collection in the timed loop
 * is included. A/B of checkouts, alternating:
 *   bun bench/route-cost.ts [rounds=3] [checkout root ...]   (default: this checkout)
 * Decision 0612.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect } from "@nats-io/transport-node";
import { startLocalNats } from "../src/embedded/nats-server.ts";

const [roundsArg = "3", ...roots] = process.argv.slice(2);
const checkouts = (roots.length > 0 ? roots : [resolve(import.meta.dir, "..")]).map((r) => resolve(r));
const ROUTES = Number(process.env.ROUTES ?? 3);
const TAKES = 20;
const PER_TAKE = 256;

await using nats = await startLocalNats({ storeDir: mkdtempSync(join(tmpdir(), "route-cost-")) });
const nc = await connect({ servers: nats.url });

async function load(root: string) {
  return {
    root,
    envelope: await import(join(root, "src/core/envelope.ts")),
    routes: await import(join(root, "src/core/routes.ts")),
    decoded: await import(join(root, "src/notify/route-decoded.ts")),
    send: await import(join(root, "src/notify/route-send.ts")),
  };
}
const trees = await Promise.all(checkouts.map(load));

let n = 0;
const encoder = new TextEncoder();
const message = (encodeEnvelope: (r: unknown[], at: number) => string) =>
  encoder.encode(
    encodeEnvelope(
      Array.from({ length: 25 }, (_, i) => ({
        eventId: crypto.randomUUID(),
        tenant: "acme",
        deviceId: `dev-${n % 40}`,
        ts: 1_767_225_600_000 + n++ * 10,
        lat: 52 + i / 1e3,
        lon: 4.3,
        metrics: { speed: i, temp: 20.5, battery: 80 },
        attributes: null,
      })),
      Date.now(),
    ),
  );
const messages = Array.from({ length: PER_TAKE * TAKES }, (_, i) => ({
  seq: i + 1,
  data: message(trees[0]!.envelope.encodeEnvelope),
}));
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function round(t: (typeof trees)[number]): Promise<number> {
  const decoded = t.decoded.decodedCache();
  const routes = Array.from({ length: ROUTES }, (_, i) => ({
    route: { id: `r${i}`, tenant: "acme", name: `bench-${i}`, destination: { type: "nats" }, secretEncrypted: null },
    match: t.routes.compileFilter({}),
  }));
  Bun.gc(true);
  const c0 = cpu();
  for (let off = 0; off < messages.length; off += PER_TAKE) {
    const take = messages.slice(off, off + PER_TAKE);
    for (const { route, match } of routes) {
      const out: unknown[] = [];
      for (const m of take)
        for (const r of decoded.readings(m.seq, m.data) ?? []) {
          const x = match(r);
          if (x) out.push(x);
        }
      for (const readings of t.routes.chunk(out)) {
        const o = await t.send.sendBatch(route, { id: "bench", readings }, { broker: { nc }, timeoutMs: 5_000 });
        if (!o.ok) throw new Error(JSON.stringify(o));
      }
    }
  }
  return ((cpu() - c0) / (messages.length * 25)) * 1e6;
}

const rounds = Number(roundsArg);
for (let i = 0; i < rounds; i++)
  for (const t of trees)
    console.log(`${t.root} round ${i}: ${(await round(t)).toFixed(2)} µs CPU per reading for ${ROUTES} routes`);
await nc.close();
