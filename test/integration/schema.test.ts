/** Migrations are idempotent and the drizzle schema matches the migrated tables column by column. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { is } from "drizzle-orm";
import { getTableConfig, PgTable as PgTableClass, type PgTable } from "drizzle-orm/pg-core";
import { createSql, type Sql } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { MIGRATIONS } from "../../src/db/migrations.ts";
import * as schema from "../../src/db/schema.ts";
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
  const always = MIGRATIONS.filter((m) => m.when === "always").map((m) => m.name);
  expect(results.map((r) => r.applied).sort((a, b) => a.length - b.length)).toEqual([[], always]);
  expect(results[0]!.mode).toBe("postgresql");
  expect((await migrate(sql, opts)).applied).toEqual([]);
  const [meta] = await sql`SELECT value FROM telemetry_meta WHERE key = 'storage_mode'`;
  expect(meta!.value).toBe("postgresql");
});

test("a changed migration is refused", async () => {
  await sql`UPDATE telemetry_migrations SET checksum = 'tampered' WHERE name = '0001_init'`;
  await expect(migrate(sql, opts)).rejects.toThrow(/changed after it was applied/);
});

const tables = (Object.values(schema) as unknown[]).filter((t): t is PgTable => is(t, PgTableClass));

test("every table the migrations create has a drizzle definition", async () => {
  const rows =
    await sql`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'telemetry_migrations' ORDER BY 1`;
  expect(rows.map((r) => r.table_name as string)).toEqual(tables.map((t) => getTableConfig(t).name).sort());
});

test.each(tables)("drizzle matches the database: %#", async (table) => {
  const cfg = getTableConfig(table);
  const cols = await sql`
    SELECT column_name, data_type, is_nullable FROM information_schema.columns
    WHERE table_name = ${cfg.name} ORDER BY ordinal_position`;
  const typeOf: Record<string, string> = {
    text: "text",
    uuid: "uuid",
    jsonb: "jsonb",
    "double precision": "double precision",
    bigint: "bigint",
    bigserial: "bigint",
    "timestamp with time zone": "timestamp with time zone",
    integer: "integer",
    boolean: "boolean",
    "text[]": "ARRAY",
  };
  const fromDrizzle = cfg.columns.map((c) => ({
    column_name: c.name,
    data_type: typeOf[c.getSQLType()] ?? c.getSQLType(),
    is_nullable: c.notNull ? "NO" : "YES",
  }));
  expect(fromDrizzle).toEqual([...cols] as typeof fromDrizzle);
});
