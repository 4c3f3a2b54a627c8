/**
 * The failover audit on a replicated stream (3-node NATS cluster on loopback): readings the
 * writer's durable consumer moved past without writing — simulated here by another client taking
 * and acking them while no writer runs, which is what nats-server 2.9 did to one reading in the
 * cluster test — are written after the next leader election, exactly once; the rest is untouched.
 */
import { afterAll, expect, test } from "bun:test";
import { jetstream } from "@nats-io/jetstream";
import { createSql } from "../../src/db/client.ts";
import { registry } from "../../src/lib/metrics.ts";
import { validRecords } from "../helpers/data.ts";
import { startNatsCluster, type NatsCluster } from "../helpers/nats-cluster.ts";
import { post, startTestServer, type TestServer } from "../helpers/server.ts";
import { check, freshDatabase } from "../helpers/services.ts";

const cleanup: AsyncDisposable[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c[Symbol.asyncDispose]();
}, 60_000);

async function restored(): Promise<number> {
  const m = await registry.getSingleMetric("telemetry_writer_audit_restored_total")?.get();
  return m?.values.reduce((n, v) => n + v.value, 0) ?? 0;
}

async function serve(env: Record<string, string>, roles: string): Promise<TestServer> {
  const s = await startTestServer({ ...env, TELEMETRY_ROLES: roles });
  cleanup.push(s);
  return s;
}

test("after a leader election, readings the writer consumer skipped are written once", async () => {
  const cluster: NatsCluster = await startNatsCluster();
  cleanup.push(cluster);
  const dbUrl = await freshDatabase("audit");
  const sql = createSql(dbUrl, { max: 1, name: "test" });
  cleanup.push({ [Symbol.asyncDispose]: () => sql.end() });
  const rows = async () =>
    (await sql`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM readings`)[0] as {
      n: number;
      d: number;
    };
  const env = { NATS_URL: cluster.url, DATABASE_URL: dbUrl, TELEMETRY_STREAM_REPLICAS: "3" };

  // 100 readings through ingest and the writer, as usual.
  const first = await serve(env, "ingest,writer");
  expect((await post(first, validRecords(100, 10))).status).toBe(202);
  await check(async () => (await rows()).n === 100, { what: "100 rows", timeoutMs: 30_000 });
  await first[Symbol.asyncDispose]();

  // 50 more accepted while no writer runs; then the writer's consumer moves past them unwritten.
  const ingest = await serve(env, "ingest");
  expect((await post(ingest, validRecords(50, 10, 100))).status).toBe(202);
  await ingest[Symbol.asyncDispose]();
  await cluster.withJsm(async (jsm, nc) => {
    const consumer = await jetstream(nc).consumers.get("TELEMETRY", "writer");
    let left = (await consumer.info()).num_pending;
    expect(left).toBeGreaterThan(0);
    while (left > 0) {
      for await (const m of await consumer.fetch({ max_messages: left, expires: 2_000 })) {
        await m.ackAck();
        left--;
      }
    }
    await check(
      async () => {
        const i = await jsm.consumers.info("TELEMETRY", "writer");
        return i.num_pending + i.num_ack_pending === 0;
      },
      { what: "the writer consumer moved past the 50", timeoutMs: 10_000 },
    );
  });

  // A writer again: nothing is pending for it, so the 50 stay missing...
  const before = await restored();
  await serve(env, "writer");
  await Bun.sleep(2_000);
  expect((await rows()).n).toBe(100);

  // ...until a leader election, after which the audit writes them (and only them).
  await cluster.withJsm(async (_, nc) => {
    await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.TELEMETRY", undefined, { timeout: 10_000 });
  });
  await check(async () => (await rows()).n >= 150, { what: "150 rows after the audit", timeoutMs: 60_000 });
  expect(await rows()).toEqual({ n: 150, d: 150 });
  // The counter moves when the audit's replay has returned, a moment after its last commit.
  await check(async () => (await restored()) - before >= 50, { what: "the audit's count", timeoutMs: 10_000 });
  expect((await restored()) - before).toBe(50);
}, 180_000);
