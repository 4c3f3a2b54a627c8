/**
 * The floor under the server's CPU per single-record request: bench/load.ts's open loop (RATE
 * req/s, SECONDS) against servers in their own processes that do only part of the work, with
 * their CPU µs per request from /proc (decision 0545):
 *   - http: Bun.serve reads the body and answers 202 (bench/floor.ts's server);
 *   - http+pub: the same plus one JetStream publish of the body, answered after its PubAck
 *     (src/nats/publisher.ts), the part of the path no admission step can cut;
 *   - hono, hono+pub: the same through a Hono app shaped like the server's (three async
 *     middlewares before the route's handler, `c.json` for the answer).
 *   bun bench/single-floor.ts [rounds]   (env: RATE=5000 SECONDS=10)
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNats } from "../src/embedded/nats-server.ts";
import { cpuSeconds, ROOT, runLoad } from "./env.ts";

if (process.argv[2] === "serve") {
  const mode = process.argv[3] ?? "http";
  const pub = mode.endsWith("+pub")
    ? await (async () => {
        const { connect } = await import("@nats-io/transport-node");
        const { jetstreamManager } = await import("@nats-io/jetstream");
        const { AckedPublisher } = await import("../src/nats/publisher.ts");
        const nc = await connect({ servers: process.argv[4]! });
        await (await jetstreamManager(nc)).streams.add({ name: "FLOOR", subjects: ["floor.>"] });
        return new AckedPublisher(nc, 5_000);
      })()
    : null;
  let n = 0;
  const { Hono } = await import("hono");
  const app = new Hono();
  app.use(async (c, next) => {
    c.set("start" as never, performance.now() as never);
    await next();
  });
  app.use("/api/*", async (_c, next) => {
    await next();
  });
  const guard = async (c: { req: { header(n: string): string | undefined } }, next: () => Promise<void>) => {
    if (!c.req.header("authorization")) throw new Error("no key");
    await next();
  };
  app.on("POST", "/api/v1/telemetry", guard as never, async (c) => {
    const body = await c.req.raw.text();
    if (pub) await pub.publish("floor.x", body, { msgId: `f${n++}`, expectStream: "FLOOR" });
    return c.json({ accepted: 1 }, 202);
  });
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: mode.startsWith("hono")
      ? app.fetch
      : async (req) => {
          const body = await req.text();
          if (pub) await pub.publish("floor.x", body, { msgId: `f${n++}`, expectStream: "FLOOR" });
          return Response.json({ accepted: 1 }, { status: 202 });
        },
  });
  console.log(server.port);
} else {
  const rounds = Number(process.argv[2] ?? 2);
  const rate = Number(process.env.RATE ?? 5_000);
  const seconds = Number(process.env.SECONDS ?? 10);
  const work = mkdtempSync(join(tmpdir(), "telemetry-floor-"));
  chmodSync(work, 0o755);
  process.on("exit", () => rmSync(work, { recursive: true, force: true }));
  await using nats = await startLocalNats({ storeDir: join(work, "nats") });
  for (let r = 0; r < rounds; r++) {
    for (const mode of ["http", "http+pub", "hono", "hono+pub"]) {
      const proc = Bun.spawn({
        cmd: [process.execPath, join(ROOT, "bench/single-floor.ts"), "serve", mode, nats.url],
        stdout: "pipe",
        stderr: "inherit",
      });
      const { value } = await proc.stdout.getReader().read();
      const url = `http://127.0.0.1:${Number(new TextDecoder().decode(value).trim())}`;
      await runLoad(url, "single", `fw${r}`, 3, rate);
      const cpu0 = cpuSeconds(proc.pid);
      const res = await runLoad(url, "single", `f${r}`, seconds, rate);
      const cpuUsPerReq = Math.round(((cpuSeconds(proc.pid) - cpu0) * 1e6) / res.requests);
      console.log(JSON.stringify({ round: r, mode, cpuUsPerReq, p50: res.p50, p99: res.p99, requests: res.requests }));
      proc.kill();
      await proc.exited;
    }
  }
}
