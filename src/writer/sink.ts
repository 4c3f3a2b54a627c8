/**
 * The writer's database side: one transaction per batch holding the readings, the 1-minute
 * rollups of the rows actually added, one upsert of the devices touched, and the batch's
 * quarantine rows. Nothing is acknowledged before COMMIT.
 *
 * Readings go in one of two ways:
 *  - "copy" (the fast path, ~1.7x the rows/s of unnest on this table): COPY straight into
 *    `readings`. Any event already stored makes the COPY fail on the event key (23505) and the
 *    whole transaction roll back; the batch is then written the "upsert" way. Every row being new,
 *    the rollups are computed here from the batch.
 *  - "upsert": INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING, feeding the rollups from
 *    the rows it added (RETURNING): a duplicate or a replayed reading counts nothing.
 * Either way the event key decides: one event, one row, counted once.
 */
import type postgres from "postgres";
import type { Sql } from "../db/client.ts";
import type { Envelope } from "../core/envelope.ts";
import { insertQuarantine, type QuarantineRow } from "../db/quarantine.ts";
import { batchRows, COPY_COLUMNS, iso, rollupsOf, summarizeDevices, type DeviceState, type Row } from "./rows.ts";
import { copyBinary } from "./copy-binary.ts";

export { summarizeDevices } from "./rows.ts";

export type WritePath = "copy" | "upsert";

export interface WriteResult {
  inserted: number;
  readings: number;
  /** How the readings went in; "upsert" after a COPY that met an existing event. */
  path: WritePath;
  /** The COPY met an event already stored (and the batch went the upsert way). */
  conflict: boolean;
}

export interface WriteOptions {
  /** Try COPY first (default). "upsert" when duplicates are likely: redeliveries, replays. */
  prefer?: WritePath;
}

type Tx = postgres.TransactionSql;

const UNIQUE_VIOLATION = "23505";

export async function writeBatch(
  sql: Sql,
  envelopes: readonly Envelope[],
  quarantined: readonly QuarantineRow[] = [],
  opts: WriteOptions = {},
): Promise<WriteResult> {
  const rows = batchRows(envelopes);
  const devices = summarizeDevices(envelopes);
  if (rows.length > 0 && (opts.prefer ?? "copy") === "copy" && (await copySupported(sql))) {
    try {
      await sql.begin(async (tx) => {
        await copyRows(tx, rows);
        await Promise.all([
          upsertRollups(tx, rows),
          upsertDevices(tx, devices),
          ...quarantined.map((q) => insertQuarantine(tx as unknown as Sql, q)),
        ]);
      });
      return { inserted: rows.length, readings: rows.length, path: "copy", conflict: false };
    } catch (err) {
      if ((err as { code?: unknown }).code !== UNIQUE_VIOLATION) throw err;
      const inserted = await writeUpsert(sql, rows, devices, quarantined);
      return { inserted, readings: rows.length, path: "upsert", conflict: true };
    }
  }
  const inserted = await writeUpsert(sql, rows, devices, quarantined);
  return { inserted, readings: rows.length, path: "upsert", conflict: false };
}

const copySupport = new WeakMap<Sql, boolean>();

/**
 * PGlite (the WASM PostgreSQL the TimescaleDB tests use, reached through pglite-socket) cannot take
 * COPY FROM STDIN: its WASM runtime aborts. Asked once per client; a failure to ask is thrown
 * like any write error (retried by the writer).
 */
async function copySupported(sql: Sql): Promise<boolean> {
  let ok = copySupport.get(sql);
  if (ok === undefined) {
    const [row] = await sql<Array<{ v: string }>>`SELECT version() AS v`;
    ok = !/emscripten|wasm/i.test(row?.v ?? "");
    copySupport.set(sql, ok);
  }
  return ok;
}

async function copyRows(tx: Tx, rows: readonly Row[]): Promise<void> {
  const stream = await tx.unsafe(`COPY readings (${COPY_COLUMNS}) FROM STDIN (FORMAT binary)`).writable();
  await new Promise<void>((resolve, reject) => {
    stream.on("error", reject);
    stream.on("finish", resolve);
    stream.end(copyBinary(rows));
  });
}

export function upsertRollups(tx: Tx, rows: readonly Row[]) {
  const g = rollupsOf(rows);
  if (g.length === 0) return Promise.resolve([]);
  return tx`
    INSERT INTO readings_1m AS r (tenant, device_id, metric, bucket, count, sum, sum_sq, min, max)
    SELECT tenant, device_id, metric, bucket::timestamptz, n, s, sq, mn, mx
    FROM unnest(${g.map((x) => x.tenant)}::text[], ${g.map((x) => x.deviceId)}::text[], ${g.map((x) => x.metric)}::text[],
                ${g.map((x) => iso(x.bucket))}::text[], ${g.map((x) => x.count)}::int8[], ${g.map((x) => x.sum)}::float8[],
                ${g.map((x) => x.sumSq)}::float8[], ${g.map((x) => x.min)}::float8[], ${g.map((x) => x.max)}::float8[])
         AS u(tenant, device_id, metric, bucket, n, s, sq, mn, mx)
    ON CONFLICT (tenant, device_id, metric, bucket) DO UPDATE SET
      count = r.count + EXCLUDED.count, sum = r.sum + EXCLUDED.sum, sum_sq = r.sum_sq + EXCLUDED.sum_sq,
      min = LEAST(r.min, EXCLUDED.min), max = GREATEST(r.max, EXCLUDED.max)`;
}

async function writeUpsert(
  sql: Sql,
  rows: readonly Row[],
  devices: readonly DeviceState[],
  quarantined: readonly QuarantineRow[],
): Promise<number> {
  const results = await sql.begin((tx) => {
    const statements = [];
    if (rows.length > 0) statements.push(insertReturningRollups(tx, rows));
    if (devices.length > 0) statements.push(upsertDevices(tx, devices));
    for (const q of quarantined) statements.push(insertQuarantine(tx as unknown as Sql, q));
    return statements;
  });
  return rows.length > 0 ? (results[0] as unknown as Array<{ inserted: number }>)[0]!.inserted : 0;
}

function insertReturningRollups(tx: Tx, rows: readonly Row[]) {
  const col = <T>(f: (r: Row) => T) => rows.map(f);
  // Rollups are fed from the rows this INSERT actually added (RETURNING), in the same
  // transaction: a duplicate or a replayed reading inserts nothing and so counts nothing.
  return tx`
    WITH ins AS (
      INSERT INTO readings (tenant, device_id, ts, event_id, lat, lon, metrics, attributes, received_at)
      SELECT tenant, device_id, ts::timestamptz, event_id::uuid, lat, lon, m::jsonb, a::jsonb, rx::timestamptz
      FROM unnest(${col((r) => r.tenant)}::text[], ${col((r) => r.deviceId)}::text[], ${col((r) => iso(r.ts))}::text[], ${col((r) => r.eventId)}::text[],
                  ${col((r) => r.lat)}::float8[], ${col((r) => r.lon)}::float8[], ${col((r) => (r.metrics ? JSON.stringify(r.metrics) : null))}::text[],
                  ${col((r) => (r.attributes ? JSON.stringify(r.attributes) : null))}::text[], ${col((r) => iso(r.receivedAt))}::text[])
           AS u(tenant, device_id, ts, event_id, lat, lon, m, a, rx)
      ON CONFLICT DO NOTHING
      RETURNING tenant, device_id, ts, metrics
    ), agg AS (
      SELECT i.tenant, i.device_id, kv.key AS metric, date_trunc('minute', i.ts, 'UTC') AS bucket,
             count(*) AS n, sum(kv.value::float8) AS s, sum(kv.value::float8 * kv.value::float8) AS sq,
             min(kv.value::float8) AS mn, max(kv.value::float8) AS mx
      FROM ins i CROSS JOIN LATERAL jsonb_each(i.metrics) AS kv
      GROUP BY 1, 2, 3, 4
      ORDER BY 1, 2, 3, 4
    ), rollup AS (
      INSERT INTO readings_1m AS r (tenant, device_id, metric, bucket, count, sum, sum_sq, min, max)
      SELECT tenant, device_id, metric, bucket, n, s, sq, mn, mx FROM agg
      ON CONFLICT (tenant, device_id, metric, bucket) DO UPDATE SET
        count = r.count + EXCLUDED.count, sum = r.sum + EXCLUDED.sum, sum_sq = r.sum_sq + EXCLUDED.sum_sq,
        min = LEAST(r.min, EXCLUDED.min), max = GREATEST(r.max, EXCLUDED.max)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins)::int AS inserted, (SELECT count(*) FROM rollup)::int AS buckets`;
}

export function upsertDevices(tx: Tx, devices: readonly DeviceState[]) {
  if (devices.length === 0) return Promise.resolve([]);
  return tx`
    INSERT INTO devices AS d (tenant, device_id, first_seen, last_seen, last_received_at, last_lat, last_lon, last_location_at)
    SELECT tenant, device_id, fs::timestamptz, ls::timestamptz, lr::timestamptz, lat, lon, la::timestamptz
    FROM unnest(${devices.map((d) => d.tenant)}::text[], ${devices.map((d) => d.deviceId)}::text[],
                ${devices.map((d) => iso(d.firstSeen))}::text[], ${devices.map((d) => iso(d.lastSeen))}::text[],
                ${devices.map((d) => iso(d.lastReceivedAt))}::text[], ${devices.map((d) => d.lat)}::float8[],
                ${devices.map((d) => d.lon)}::float8[], ${devices.map((d) => (d.locationAt === null ? null : iso(d.locationAt)))}::text[])
         AS u(tenant, device_id, fs, ls, lr, lat, lon, la)
    ON CONFLICT (tenant, device_id) DO UPDATE SET
      first_seen = LEAST(d.first_seen, EXCLUDED.first_seen),
      last_seen = GREATEST(d.last_seen, EXCLUDED.last_seen),
      last_received_at = GREATEST(d.last_received_at, EXCLUDED.last_received_at),
      last_lat = CASE WHEN EXCLUDED.last_location_at >= d.last_location_at OR d.last_location_at IS NULL
                      THEN COALESCE(EXCLUDED.last_lat, d.last_lat) ELSE d.last_lat END,
      last_lon = CASE WHEN EXCLUDED.last_location_at >= d.last_location_at OR d.last_location_at IS NULL
                      THEN COALESCE(EXCLUDED.last_lon, d.last_lon) ELSE d.last_lon END,
      last_location_at = GREATEST(d.last_location_at, EXCLUDED.last_location_at)`;
}
