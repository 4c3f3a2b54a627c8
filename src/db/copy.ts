/**
 * Copies every table of one telemetry database into another that the migrations have prepared
 * (`telemetry migrate-to`). The tables are read from the source's catalog (every table in
 * `public` but the migrations' own bookkeeping), in foreign-key order, in primary-key order and
 * batches; rows go over as JSON (lossless for every column type the schema uses: timestamps keep
 * their microseconds) and are inserted with ON CONFLICT DO NOTHING, so a re-run after an
 * interruption completes the copy and changes nothing once it is complete. Sequences are advanced
 * on the target to at least the source's. The counts are compared at the end.
 */
import type { Sql } from "./client.ts";

export interface TableCopy {
  table: string;
  source: number;
  target: number;
  inserted: number;
}

export interface CopyOptions {
  batchRows?: number;
  onProgress?: (table: string, inserted: number, read: number) => void;
}

/** Kept by each database for itself (the target's is written by its own migration run). */
const OWN_TABLES = new Set(["telemetry_migrations"]);

interface TableInfo {
  name: string;
  key: Array<{ column: string; type: string }>;
  references: string[];
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

async function tables(sql: Sql): Promise<TableInfo[]> {
  const rows = await sql<
    { name: string; key: Array<{ column: string; type: string }> | null; refs: string[] | null }[]
  >`
    SELECT c.relname AS name,
      (SELECT json_agg(json_build_object('column', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY k.ord)
         FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = c.oid AND i.indisprimary) AS key,
      (SELECT array_agg(DISTINCT r.relname::text) FROM pg_constraint f JOIN pg_class r ON r.oid = f.confrelid
        WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.confrelid <> c.oid) AS refs
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    ORDER BY c.relname`;
  return rows
    .filter((r) => !OWN_TABLES.has(r.name))
    .map((r) => {
      if (!r.key) throw new Error(`table ${r.name} has no primary key: cannot copy it in batches`);
      return { name: r.name, key: r.key, references: r.refs ?? [] };
    });
}

/** Referenced tables before the tables referencing them. */
export function dependencyOrder<T extends { name: string; references: string[] }>(list: T[]): T[] {
  const byName = new Map(list.map((t) => [t.name, t]));
  const done = new Set<string>();
  const out: T[] = [];
  const visit = (t: T, path: string[]) => {
    if (done.has(t.name)) return;
    if (path.includes(t.name)) throw new Error(`foreign keys form a cycle: ${[...path, t.name].join(" -> ")}`);
    for (const ref of t.references) {
      const r = byName.get(ref);
      if (r) visit(r, [...path, t.name]);
    }
    done.add(t.name);
    out.push(t);
  };
  for (const t of list) visit(t, []);
  return out;
}

async function copyTable(source: Sql, target: Sql, t: TableInfo, opts: Required<CopyOptions>): Promise<number> {
  const keyList = t.key.map((k) => ident(k.column)).join(", ");
  const after = t.key.map((k, i) => `$${i + 1}::${k.type}`).join(", ");
  const batch = `
    WITH b AS (SELECT * FROM ${ident(t.name)} %WHERE% ORDER BY ${keyList} LIMIT ${opts.batchRows})
    SELECT (SELECT json_agg(b)::text FROM b) AS rows,
           (SELECT count(*)::int FROM b) AS n,
           (SELECT json_build_array(${t.key.map((k) => `${ident(k.column)}::text`).join(", ")}) FROM b ORDER BY ${t.key.map((k) => `${ident(k.column)} DESC`).join(", ")} LIMIT 1)::text AS last`;
  const first = batch.replace("%WHERE%", "");
  const next = batch.replace("%WHERE%", `WHERE (${keyList}) > (${after})`);
  let last: string[] | null = null;
  let read = 0;
  let inserted = 0;
  for (;;) {
    const [page] = await source.unsafe<{ rows: string | null; n: number; last: string | null }[]>(
      last ? next : first,
      last ?? [],
    );
    if (!page || page.n === 0 || page.rows === null) break;
    const result = await target.unsafe(
      `INSERT INTO ${ident(t.name)} SELECT * FROM json_populate_recordset(NULL::${ident(t.name)}, ($1::text)::json) ON CONFLICT DO NOTHING`,
      [page.rows],
    );
    read += page.n;
    inserted += result.count;
    opts.onProgress(t.name, inserted, read);
    if (page.n < opts.batchRows) break;
    last = JSON.parse(page.last!) as string[];
  }
  return inserted;
}

/** Advances every sequence of the target to at least where the source's stands. */
async function advanceSequences(source: Sql, target: Sql): Promise<void> {
  const seqs = await source<{ name: string; last: string | null }[]>`
    SELECT sequencename AS name, last_value::text AS last FROM pg_sequences WHERE schemaname = 'public'`;
  for (const s of seqs) {
    if (s.last === null) continue;
    await target`SELECT setval(${ident(s.name)}::regclass, greatest(${s.last}::bigint, coalesce((SELECT last_value FROM pg_sequences WHERE schemaname = 'public' AND sequencename = ${s.name}), 0)))`;
  }
}

export async function copyDatabase(source: Sql, target: Sql, options: CopyOptions = {}): Promise<TableCopy[]> {
  const opts: Required<CopyOptions> = { batchRows: 5_000, onProgress: () => {}, ...options };
  const list = dependencyOrder(await tables(source));
  const targetTables = new Set((await tables(target)).map((t) => t.name));
  const missing = list.filter((t) => !targetTables.has(t.name)).map((t) => t.name);
  if (missing.length > 0)
    throw new Error(
      `the target database has no table ${missing.join(", ")} (are its migrations older than the source's?)`,
    );
  const copies: TableCopy[] = [];
  for (const t of list) {
    const inserted = await copyTable(source, target, t, opts);
    copies.push({ table: t.name, source: 0, target: 0, inserted });
  }
  await advanceSequences(source, target);
  for (const c of copies) {
    const q = `SELECT count(*)::bigint AS n FROM ${ident(c.table)}`;
    c.source = Number((await source.unsafe<{ n: string }[]>(q))[0]!.n);
    c.target = Number((await target.unsafe<{ n: string }[]>(q))[0]!.n);
  }
  return copies;
}
