/** Migrations are idempotent and the drizzle schema matches the migrated tables column by column. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { getTableConfig, type PgTable } from "drizzle-orm/pg-core";
import { createSql, type Sql } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { devices, quarantine, readings, telemetryMeta } from "../../src/db/schema.ts";
import { freshDatabase } from "../helpers/services.ts";

let sql: Sql;
const opts = { timescale: "auto" as const, retentionMs: null, compressAfterMs: 7 * 86_400_000 };

beforeAll(async () => {
  sql = createSql(await freshDatabase("schema"), { max: 4, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end();
});

test("migrating twice, even concurrently, applies each migration once", async () => {
  const results = await Promise.all([migrate(sql, opts), migrate(sql, opts)]);
  expect(results.map((r) => r.applied.length).sort()).toEqual([0, 1]);
  expect(results[0]!.mode).toBe("postgresql");
  expect((await migrate(sql, opts)).applied).toEqual([]);
  const [meta] = await sql`SELECT value FROM telemetry_meta WHERE key = 'storage_mode'`;
  expect(meta!.value).toBe("postgresql");
});

test("a changed migration is refused", async () => {
  await sql`UPDATE telemetry_migrations SET checksum = 'tampered' WHERE name = '0001_init'`;
  await expect(migrate(sql, opts)).rejects.toThrow(/changed after it was applied/);
});

test.each([readings, devices, quarantine, telemetryMeta] as PgTable[])("drizzle matches the database: %#", async (table) => {
  const cfg = getTableConfig(table);
  const cols = await sql`
    SELECT column_name, data_type, is_nullable FROM information_schema.columns
    WHERE table_name = ${cfg.name} ORDER BY ordinal_position`;
  const typeOf: Record<string, string> = {
    text: "text", uuid: "uuid", jsonb: "jsonb", "double precision": "double precision", bigint: "bigint", bigserial: "bigint",
    "timestamp with time zone": "timestamp with time zone",
  };
  const fromDrizzle = cfg.columns.map((c) => ({ column_name: c.name, data_type: typeOf[c.getSQLType()] ?? c.getSQLType(), is_nullable: c.notNull ? "NO" : "YES" }));
  expect(fromDrizzle).toEqual([...cols] as typeof fromDrizzle);
});
