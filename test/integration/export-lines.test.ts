/**
 * The export's lines as PostgreSQL writes them (src/db/export-sql.ts), against a real migrated
 * database, in both read modes (COPY through the export's framed client, and PGlite's keyset pages,
 * here on PostgreSQL): exact CSV and NDJSON text for a reading with and without location, metrics
 * and attributes, a metric filter's order, keyset pages over timestamps that differ only in
 * microseconds; COPY's inlined literals with quotes and backslashes; a COPY left early is cancelled
 * and its connection works afterwards.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { type ExportMode, type ExportQuery, exportChunks } from "../../src/db/export.ts";
import { createExportSql } from "../../src/db/export-socket.ts";
import { migrate } from "../../src/db/migrate.ts";
import { freshDatabase } from "../helpers/services.ts";

const E1 = "118b9bbb-4ebb-5c49-9998-7290b5374396";
const E2 = "228b9bbb-4ebb-5c49-9998-7290b5374396";
const E3 = "338b9bbb-4ebb-5c49-9998-7290b5374396";
let sql: Sql;
let exportSql: Sql;

beforeAll(async () => {
  const url = await freshDatabase("export_lines");
  sql = createSql(url, { max: 2, name: "export-lines" });
  exportSql = createExportSql(url, { slots: 1, name: "export-lines-copy" });
  await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });
  await sql`INSERT INTO readings (tenant, device_id, ts, event_id, lat, lon, metrics, attributes, received_at) VALUES
    ('acme', 'truck-1', '2026-11-30T08:00:00.005123Z', ${E1}, 52.52, 13.405, '{"speed": 61.5, "temp": -2}',
     ${sql.json({ fw: '1.2 "beta"', on: true, note: null })}, now()),
    ('acme', 'truck-1', '2026-11-30T08:00:00.005456Z', ${E2}, NULL, NULL, '{"speed": 1e-7}', '{}', now()),
    ('acme', 'truck-1', '2026-11-30T08:00:01Z', ${E3}, 52.5, 13.4, NULL, NULL, now()),
    ('other', 'truck-1', '2026-11-30T08:00:00Z', gen_random_uuid(), NULL, NULL, '{"speed": 9}', NULL, now())`;
}, 60_000);

afterAll(async () => {
  await exportSql?.end({ timeout: 1 });
  await sql?.end({ timeout: 1 });
});

const q = (metrics: string[] | null = null): ExportQuery => ({
  tenant: "acme",
  from: new Date("2026-11-30T00:00:00Z"),
  to: new Date("2026-12-01T00:00:00Z"),
  devices: ["truck-1"],
  metrics,
});

async function lines(query: ExportQuery, format: "csv" | "ndjson", mode: ExportMode, rows?: number) {
  let out = "";
  const db = mode === "copy" ? exportSql : sql;
  for await (const chunk of exportChunks(db, query, format, mode, rows)) out += Buffer.from(chunk).toString("utf8");
  return out;
}

const HEAD1 = `2026-11-30T08:00:00.005Z,truck-1,${E1},52.52,13.405,`;
const HEAD2 = `2026-11-30T08:00:00.005Z,truck-1,${E2},,,`;
const HEAD3 = `2026-11-30T08:00:01.000Z,truck-1,${E3},52.5,13.4,`;

describe.each(["copy", "keyset"] as const)("%s", (mode) => {
  test("CSV: a line per metric (in the stored order: jsonb keeps shorter names first), a position without metrics as one line with metric and value empty", async () => {
    expect(await lines(q(), "csv", mode)).toBe(
      `${HEAD1}temp,-2\n${HEAD1}speed,61.5\n${HEAD2}speed,0.0000001\n${HEAD3},\n`,
    );
  });

  test("CSV: a metric filter keeps only those metrics, in the filter's order", async () => {
    expect(await lines(q(["speed", "temp"]), "csv", mode)).toBe(
      `${HEAD1}speed,61.5\n${HEAD1}temp,-2\n${HEAD2}speed,0.0000001\n`,
    );
  });

  test("NDJSON: the ingest shape, compact; location, metrics and attributes only when there are any", async () => {
    expect(await lines(q(), "ndjson", mode)).toBe(
      [
        `{"device_id":"truck-1","ts":"2026-11-30T08:00:00.005Z","location":{"lat":52.52,"lon":13.405},"metrics":{"temp":-2,"speed":61.5},"attributes":{"fw":"1.2 \\"beta\\"","on":true,"note":null}}`,
        `{"device_id":"truck-1","ts":"2026-11-30T08:00:00.005Z","metrics":{"speed":0.0000001}}`,
        `{"device_id":"truck-1","ts":"2026-11-30T08:00:01.000Z","location":{"lat":52.5,"lon":13.4}}`,
        "",
      ].join("\n"),
    );
  });

  test("NDJSON: a metric filter that leaves none drops the metrics field", async () => {
    const out = await lines(q(["temp"]), "ndjson", mode);
    expect(
      out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual([
      {
        device_id: "truck-1",
        ts: "2026-11-30T08:00:00.005Z",
        location: { lat: 52.52, lon: 13.405 },
        metrics: { temp: -2 },
        attributes: { fw: '1.2 "beta"', on: true, note: null },
      },
    ]);
  });

  test("one row per chunk: every reading once, even two within the same millisecond", async () => {
    expect(await lines(q(), "csv", mode, 1)).toBe(await lines(q(), "csv", mode));
  });
});

describe("copy", () => {
  test("the filter's values are literals: quotes and backslashes in a tenant and a device id match exactly", async () => {
    const tenant = "o'b\\'; SELECT 1; --";
    await sql`INSERT INTO readings (tenant, device_id, ts, event_id, metrics, received_at) VALUES
      (${tenant}, ${"d\\'x"}, '2026-11-30T08:00:00Z', ${E1}, '{"n": 1}', now()),
      (${tenant}, 'other', '2026-11-30T08:00:00Z', ${E2}, '{"n": 2}', now())`;
    const out = await lines({ ...q(["n"]), tenant, devices: ["d\\'x"] }, "ndjson", "copy");
    expect(out).toBe(`{"device_id":"d\\\\'x","ts":"2026-11-30T08:00:00.000Z","metrics":{"n":1}}\n`);
  });

  test("leaving early cancels the COPY; the connection then serves the next export", async () => {
    await sql`INSERT INTO readings (tenant, device_id, ts, event_id, metrics, received_at)
      SELECT 'bulk', 'd', '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 ms', gen_random_uuid(), '{"n": 1}', now()
      FROM generate_series(1, 400000) AS i`;
    const bulk: ExportQuery = { ...q(), tenant: "bulk", devices: null, from: new Date(0) };
    const all = await lines(bulk, "csv", "copy");
    expect(all.split("\n")).toHaveLength(400_001);
    // Both connections open (the spare one cancels), so the times below are the cancel's alone.
    await Promise.all([exportSql`SELECT pg_sleep(0.05)`, exportSql`SELECT pg_sleep(0.05)`]);
    // The whole COPY read and dropped after its first two chunks, as a reader that does not cancel would.
    let whole = Infinity;
    for (let i = 0; i < 2; i++) {
      let chunks = 0;
      let t0 = 0;
      for await (const _ of exportChunks(exportSql, bulk, "csv", "copy")) if (++chunks === 2) t0 = performance.now();
      whole = Math.min(whole, performance.now() - t0);
    }
    let t0 = 0;
    let fastest = Infinity;
    for (let i = 0; i < 3; i++) {
      let chunks = 0;
      for await (const _ of exportChunks(exportSql, bulk, "csv", "copy"))
        if (++chunks === 2) {
          t0 = performance.now();
          break; // return(): cancel, drain, release
        }
      fastest = Math.min(fastest, performance.now() - t0);
    }
    console.log(`export-lines: the rest read ${whole.toFixed(0)} ms, leaving after 2 chunks ${fastest.toFixed(0)} ms`);
    // Cancelled, not read to the end and dropped: well under the time of reading the rest.
    expect(fastest).toBeLessThan(whole / 3);
    const running = await sql`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE application_name = 'telemetry-export-lines-copy' AND state <> 'idle'`;
    expect(running[0]!.n).toBe(0);
    expect(await lines(bulk, "csv", "copy")).toBe(all);
  }, 60_000);
});
