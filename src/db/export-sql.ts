/**
 * The export's lines written by PostgreSQL itself (docs/export.md, decision 0605): each row of the
 * query is one `line` column, already CSV or NDJSON with its newline(s), read raw (bytes, never
 * decoded into JavaScript values), so a million rows make no row objects, Dates or parsed JSON.
 * Same layout as core/export-format.ts; numbers are PostgreSQL's text for them (float8 shortest
 * round-trip, jsonb numeric as stored), so the value is the same, its notation may differ for very
 * small or large numbers (1e-05 rather than 0.00001).
 */
import type { ExportFormat } from "../core/export-format.ts";
import type { Sql } from "./client.ts";

type Fragment = ReturnType<Sql>;

const TS = `to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The metrics of a row as (key, value, o) rows, only the wanted ones, in the filter's order or the stored order. */
function metricRows(sql: Sql, only: readonly string[] | null): { from: Fragment; order: Fragment } {
  if (!only) return { from: sql`jsonb_each(metrics) WITH ORDINALITY AS m(key, value, o)`, order: sql`m.o` };
  return {
    from: sql`jsonb_each(metrics) WITH ORDINALITY AS m(key, value, o) WHERE m.key = ANY(${only as string[]}::text[])`,
    order: sql`array_position(${only as string[]}::text[], m.key)`,
  };
}

/** The `line` expression for a format. */
export function lineExpression(sql: Sql, format: ExportFormat, only: readonly string[] | null): Fragment {
  const m = metricRows(sql, only);
  if (format === "csv") {
    const head = sql.unsafe(
      `(${TS} || ',' || device_id || ',' || event_id::text || ',' || coalesce(lat::text, '') || ',' || coalesce(lon::text, '') || ',')`,
    );
    return sql`(SELECT coalesce(string_agg(${head} || m.key || ',' || m.value::text || E'\n', '' ORDER BY ${m.order}), ${head} || E',\n')
      FROM ${m.from})`;
  }
  return sql`('{"device_id":' || to_json(device_id)::text || ',"ts":"' || ${sql.unsafe(TS)} || '"'
    || CASE WHEN lat IS NOT NULL AND lon IS NOT NULL THEN ',"location":{"lat":' || lat::text || ',"lon":' || lon::text || '}' ELSE '' END
    || coalesce((SELECT ',"metrics":{' || string_agg(to_json(m.key)::text || ':' || m.value::text, ',' ORDER BY ${m.order}) || '}' FROM ${m.from}), '')
    || coalesce((SELECT ',"attributes":{' || string_agg(to_json(a.key)::text || ':' || a.value::text, ',' ORDER BY a.o) || '}'
         FROM jsonb_each(attributes) WITH ORDINALITY AS a(key, value, o)), '')
    || E'}\n')`;
}

/** The rows' `line` bytes (column `index` of raw rows) in one new buffer. */
export function joinLines(rows: readonly (readonly (Uint8Array | null)[])[], index = 0): Uint8Array {
  let size = 0;
  for (const r of rows) size += r[index]!.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const r of rows) {
    const b = r[index]!;
    out.set(b, at);
    at += b.length;
  }
  return out;
}
