/** Retention on plain PostgreSQL removes exactly the readings older than the period. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { pruneReadings } from "../../src/writer/retention.ts";
import { freshDatabase } from "../helpers/services.ts";

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
