/** Retention on plain PostgreSQL removes exactly the readings, and the rollups, older than their periods. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { pruneReadings, pruneRollups, startRetention } from "../../src/writer/retention.ts";
import { check, freshDatabase } from "../helpers/services.ts";

let sql: Sql;

beforeAll(async () => {
  sql = createSql(await freshDatabase("retention"), { max: 1, name: "test" });
  await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 86_400_000 });
}, 60_000);

afterAll(async () => {
  await sql?.end();
});

test("pruneReadings deletes old rows in chunks and keeps recent ones", async () => {
  await sql`
    INSERT INTO readings (tenant, device_id, ts, event_id, metrics, received_at)
    SELECT 'acme', 'd', now() - (i || ' hours')::interval, gen_random_uuid(), '{"v":1}', now()
    FROM generate_series(1, 24 * 40) AS i`;
  const removed = await pruneReadings(sql, 30 * 86_400_000);
  const [left] = await sql`SELECT count(*)::int AS n, min(ts) > now() - interval '30 days' AS recent FROM readings`;
  expect(removed).toBe(24 * 40 - 24 * 30 + 1);
  expect(left).toEqual({ n: 24 * 30 - 1, recent: true });
  expect(await pruneReadings(sql, 30 * 86_400_000)).toBe(0);
});

const insertRollups = (days: number) => sql`
  INSERT INTO readings_1m (tenant, device_id, metric, bucket, count, sum, sum_sq, min, max)
  SELECT 'acme', 'd', m, date_trunc('minute', now()) - (i || ' hours')::interval, 1, 1, 1, 1, 1
  FROM generate_series(1, 24 * ${days}) AS i, unnest(ARRAY['temp', 'rpm']) AS m
  ON CONFLICT DO NOTHING`;

test("pruneRollups deletes rollups whose minute is older than their own retention, in chunks", async () => {
  await sql`TRUNCATE readings_1m`;
  await insertRollups(250); // 12,000 rows: more than one chunk of 10,000
  const removed = await pruneRollups(sql, 100 * 86_400_000);
  const [left] =
    await sql`SELECT count(*)::int AS n, min(bucket) > now() - interval '100 days' AS recent FROM readings_1m`;
  expect(removed).toBe(2 * (24 * 250 - 24 * 100 + 1));
  expect(left).toEqual({ n: 2 * (24 * 100 - 1), recent: true });
});

test("the retention task prunes rollups even while the readings are kept (TELEMETRY_RETENTION=off)", async () => {
  await sql`TRUNCATE readings_1m`;
  await sql`TRUNCATE readings`;
  await insertRollups(20);
  await sql`
    INSERT INTO readings (tenant, device_id, ts, event_id, metrics, received_at)
    SELECT 'acme', 'd', now() - (i || ' days')::interval, gen_random_uuid(), '{"v":1}', now() FROM generate_series(1, 20) AS i`;
  const stop = startRetention(sql, { readingsMs: null, rollupsMs: 10 * 86_400_000 });
  try {
    await check(async () => (await sql`SELECT count(*)::int AS n FROM readings_1m`)[0]!.n === 2 * (24 * 10 - 1), {
      what: "rollups older than 10 days removed",
    });
  } finally {
    stop();
  }
  expect((await sql`SELECT count(*)::int AS n FROM readings`)[0]!.n).toBe(20);
});
