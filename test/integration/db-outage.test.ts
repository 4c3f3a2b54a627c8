/** PostgreSQL stopped while ingestion continues, then restarted: every accepted reading lands once. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql } from "../../src/db/client.ts";
import { identity, validRecords } from "../helpers/data.ts";
import { check, startNats, startPostgres } from "../helpers/services.ts";
import { post, startTestServer, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let pg: Awaited<ReturnType<typeof startPostgres>>;
let server: TestServer;

beforeAll(async () => {
  nats = await startNats();
  pg = await startPostgres();
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: pg.url,
    TELEMETRY_BATCH_SIZE: "200",
    TELEMETRY_ACK_WAIT: "3s",
    TELEMETRY_WRITER_MAX_PENDING: "200",
  });
}, 60_000);

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
  await pg?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

test("ingest keeps answering 202 during a database outage and nothing accepted is lost or doubled", async () => {
  const records = validRecords(6_000, 100);
  const accepted = new Set<string>();
  const send = async (from: number, to: number) => {
    for (let i = from; i < to; i += 250) {
      const batch = records.slice(i, Math.min(i + 250, to));
      const res = await post(server, batch);
      expect(res.status).toBe(202);
      batch.forEach((r, k) => {
        if (res.body.results[k].status !== "rejected") accepted.add(identity(r));
      });
    }
  };

  await send(0, 2_000);
  await pg.stop();
  const outageStart = Date.now();
  await check(async () => (await fetch(`${server.url}/ready`)).status === 503, {
    what: "/ready reports the database down",
  });
  await send(2_000, 5_000); // ingestion does not wait on the database
  await Bun.sleep(Math.max(0, 8_000 - (Date.now() - outageStart))); // longer than ack_wait: no redelivery storm, no loss
  expect(server.writer!.healthy).toBe(false);
  // The backlog waits in JetStream, not in the writer's memory (max_ack_pending bounds what it holds).
  const consumer = await server.broker.jsm.consumers.info("TELEMETRY", "writer");
  expect(consumer.num_ack_pending).toBeLessThanOrEqual(200);
  expect(consumer.num_pending).toBeGreaterThan(0);
  await pg.start();
  await send(5_000, 6_000);

  const sql = createSql(pg.url, { max: 1, name: "test" });
  try {
    const count = async () => Number((await sql`SELECT count(*)::int AS n FROM readings`)[0]!.n);
    await check(async () => (await count()) === accepted.size, { what: `${accepted.size} rows`, timeoutMs: 60_000 });
    const [stats] = await sql`SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS ids FROM readings`;
    expect(stats).toEqual({ n: 6_000, ids: 6_000 });
    expect(accepted.size).toBe(6_000);
    expect(server.writer!.healthy).toBe(true);
    expect(server.writer!.stats.retries).toBeGreaterThan(0);
  } finally {
    await sql.end();
  }
});
