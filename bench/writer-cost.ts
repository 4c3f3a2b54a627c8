/**
 * CPU per reading of the writer's database path alone, on the bench's rows (bench/data.ts):
 * decode the planned envelopes, write them with writeBatch in the writer's batch size on
 * `connections` connections, and report wall time, this process's CPU and PostgreSQL's (all
 * backends) per reading.
 *   bun bench/writer-cost.ts [readings=300000] [batch=2000] [connections=2]
 * Experiments (decisions 0520, 0575): VARIANT=copy|copy-sorted|rollups|rollups-insert|rollups-copy|devices writes only the readings' binary COPY,
 * or it plus the rollups (rollups-insert: without ON CONFLICT; rollups-copy: binary COPY in a
 * savepoint, the upsert after a conflict) or the devices, in the same
 * transaction shape; VARIANT=recompute the COPY,
 * then the batch's touched minutes recomputed from `readings`; SETUP='<sql>' runs first
 * (e.g. a different key on `readings`); PG_SETTINGS='name=value,…' starts PostgreSQL with extra
 * settings; PG_STATS=1 preloads pg_stat_statements and adds, per statement kind, its execution
 * time and WAL per reading, and the run's WAL (records, full-page images, bytes) per reading
 * (decision 0575's breakdown).
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeEnvelope } from "../src/core/envelope.ts";
import { createSql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { startLocalPostgres } from "../src/embedded/postgres.ts";
import { configureLogger } from "../src/lib/log.ts";
import { summarizeDevices, upsertDevices, upsertRollups, writeBatch } from "../src/writer/sink.ts";
import type postgres from "postgres";
import { batchRows, COPY_COLUMNS, iso, rollupsOf, type Row } from "../src/writer/rows.ts";
import { copyBinary } from "../src/writer/copy-binary.ts";
import type { Envelope } from "../src/core/envelope.ts";
import { plannedMessages } from "./data.ts";
import { childCpuSeconds, treeCpuSeconds } from "./env.ts";

configureLogger("warn", true);
const [readingsArg = "300000", batchArg = "2000", connArg = "2"] = process.argv.slice(2);
const readings = Number(readingsArg);
const batchSize = Number(batchArg);
const connections = Number(connArg);
const work = mkdtempSync(join(tmpdir(), "telemetry-writer-cost-"));
chmodSync(work, 0o755);
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
const pgStats = process.env.PG_STATS === "1";
const settings: Record<string, string> = Object.fromEntries(
  (process.env.PG_SETTINGS ?? "")
    .split(",")
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);
if (pgStats) settings.shared_preload_libraries = "pg_stat_statements";
await using pg = await startLocalPostgres({ dataDir: join(work, "pg"), settings });
const messages = plannedMessages(`wc${Date.now()}`, readings, 25);
const sql = createSql(pg.url, { max: connections, name: "writer-cost" });
await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });

const variant = process.env.VARIANT ?? "";
if (process.env.SETUP) await sql.unsafe(process.env.SETUP);
if (pgStats) {
  await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
  await sql`SELECT pg_stat_statements_reset(), pg_stat_reset_shared('wal')`;
}
async function experiment(v: string, batch: Envelope[]): Promise<number> {
  // copy-sorted: the batch's envelopes (one device each) in key order, so the index insertions walk the tree left to right.
  const rows = batchRows(
    v === "copy-sorted"
      ? [...batch].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0))
      : batch,
  );
  await sql.begin(async (tx) => {
    const stream = await tx.unsafe(`COPY readings (${COPY_COLUMNS}) FROM STDIN (FORMAT binary)`).writable();
    await new Promise<void>((resolve, reject) => {
      stream.on("error", reject);
      stream.on("finish", resolve);
      stream.end(copyBinary(rows));
    });
    if (v === "rollups") await upsertRollups(tx, rows);
    if (v === "rollups-insert") await insertRollups(tx, rows);
    if (v === "rollups-copy") await copyRollups(tx, rows);
    if (v === "devices") await upsertDevices(tx, summarizeDevices(batch));
  });
  if (v === "recompute") await recompute(rows);
  return rows.length;
}
/**
 * Experiment (a measure, not a write path): the rollups as a plain INSERT, no ON CONFLICT, which
 * holds on the bench's rows only (each device's minute is in one message).
 */
function insertRollups(tx: postgres.TransactionSql, rows: Row[]) {
  const g = rollupsOf(rows);
  return tx`
    INSERT INTO readings_1m (tenant, device_id, metric, bucket, count, sum, sum_sq, min, max)
    SELECT tenant, device_id, metric, bucket::timestamptz, n, s, sq, mn, mx
    FROM unnest(${g.map((x) => x.tenant)}::text[], ${g.map((x) => x.deviceId)}::text[], ${g.map((x) => x.metric)}::text[],
                ${g.map((x) => iso(x.bucket))}::text[], ${g.map((x) => x.count)}::int8[], ${g.map((x) => x.sum)}::float8[],
                ${g.map((x) => x.sumSq)}::float8[], ${g.map((x) => x.min)}::float8[], ${g.map((x) => x.max)}::float8[])
         AS u(tenant, device_id, metric, bucket, n, s, sq, mn, mx)`;
}
/**
 * Experiment (0575's next step, measured only): the rollups by binary COPY into readings_1m in a
 * SAVEPOINT; on a unique violation (a minute already started) back to it and the upsert.
 */
async function copyRollups(tx: postgres.TransactionSql, rows: Row[]) {
  const g = rollupsOf(rows);
  const parts: Buffer[] = [Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)];
  for (const x of g) {
    const t = [x.tenant, x.deviceId, x.metric].map((v) => Buffer.from(v));
    const b = Buffer.alloc(2 + t.reduce((n, v) => n + 4 + v.length, 0) + 6 * 12);
    let at = b.writeInt16BE(9, 0);
    for (const v of t) {
      at = b.writeInt32BE(v.length, at);
      at += v.copy(b, at);
    }
    const us = BigInt(x.bucket - 946_684_800_000) * 1000n;
    at = b.writeInt32BE(8, at);
    at = b.writeBigInt64BE(us, at);
    at = b.writeInt32BE(8, at);
    at = b.writeBigInt64BE(BigInt(x.count), at);
    for (const f of [x.sum, x.sumSq, x.min, x.max]) {
      at = b.writeInt32BE(8, at);
      at = b.writeDoubleBE(f, at);
    }
    parts.push(b);
  }
  parts.push(Buffer.from([0xff, 0xff]));
  try {
    await tx.savepoint(async (sp) => {
      const stream = await sp
        .unsafe(
          "COPY readings_1m (tenant, device_id, metric, bucket, count, sum, sum_sq, min, max) FROM STDIN (FORMAT binary)",
        )
        .writable();
      await new Promise<void>((resolve, reject) => {
        stream.on("error", reject);
        stream.on("finish", resolve);
        stream.end(Buffer.concat(parts));
      });
    });
  } catch (err) {
    if ((err as { code?: unknown }).code !== "23505") throw err;
    await upsertRollups(tx, rows);
  }
}
/** Experiment: the batch's touched minutes recomputed from `readings` after COMMIT (replacing, not adding). */
async function recompute(rows: Row[]): Promise<void> {
  const seen = new Map<string, [string, string, string]>();
  for (const r of rows) {
    const b = r.ts - (r.ts % 60_000);
    seen.set(`${r.tenant}\u0000${r.deviceId}\u0000${b}`, [r.tenant, r.deviceId, new Date(b).toISOString()]);
  }
  const t = [...seen.values()];
  await sql`
    INSERT INTO readings_1m AS o (tenant, device_id, metric, bucket, count, sum, sum_sq, min, max)
    SELECT r.tenant, r.device_id, kv.key, u.b, count(*), sum(kv.value::float8), sum(kv.value::float8 * kv.value::float8),
           min(kv.value::float8), max(kv.value::float8)
    FROM unnest(${t.map((x) => x[0])}::text[], ${t.map((x) => x[1])}::text[], ${t.map((x) => x[2])}::timestamptz[]) AS u(tenant, device_id, b)
    JOIN readings r ON r.tenant = u.tenant AND r.device_id = u.device_id AND r.ts >= u.b AND r.ts < u.b + interval '1 minute'
    CROSS JOIN LATERAL jsonb_each(r.metrics) AS kv
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (tenant, device_id, metric, bucket) DO UPDATE SET
      count = EXCLUDED.count, sum = EXCLUDED.sum, sum_sq = EXCLUDED.sum_sq, min = EXCLUDED.min, max = EXCLUDED.max`;
}
const self0 = process.cpuUsage();
const pg0 = treeCpuSeconds(pg.pid!);
const procs0 = childCpuSeconds(pg.pid!);
const t0 = performance.now();
let next = 0;
let inserted = 0;
await Promise.all(
  Array.from({ length: connections }, async () => {
    for (;;) {
      const batch = [];
      let n = 0;
      while (next < messages.length && n < batchSize) {
        const env = decodeEnvelope(messages[next++]!.body);
        batch.push(env);
        n += env.readings.length;
      }
      if (batch.length === 0) return;
      const result = variant ? await experiment(variant, batch) : (await writeBatch(sql, batch)).inserted;
      inserted += result;
    }
  }),
);
const seconds = (performance.now() - t0) / 1000;
const self = process.cpuUsage(self0);
const pgCpu = treeCpuSeconds(pg.pid!) - pg0;
const procs1 = childCpuSeconds(pg.pid!);
const us = (s: number) => ((s * 1e6) / inserted).toFixed(2);
console.log(
  JSON.stringify({
    inserted,
    seconds: Number(seconds.toFixed(2)),
    perSecond: Math.round(inserted / seconds),
    writerUsPerReading: us((self.user + self.system) / 1e6),
    postgresUsPerReading: us(pgCpu),
  }),
);
if (pgStats) {
  const perProcess: Record<string, string> = {};
  for (const [name, v] of procs1) {
    const b = procs0.get(name) ?? { user: 0, system: 0 };
    perProcess[name] = `user ${us(v.user - b.user)} sys ${us(v.system - b.system)}`;
  }
  console.log(JSON.stringify({ postgresUsPerReadingByProcess: perProcess }));
  await printStatements();
}
await sql.end();

/** Per statement kind: calls, execution ms and WAL bytes per reading; then the run's WAL per reading. */
async function printStatements(): Promise<void> {
  const kinds: Array<[string, RegExp]> = [
    ["copy rollups", /^COPY readings_1m/],
    ["copy readings", /^COPY readings /],
    ["rollups upsert", /INTO readings_1m/],
    ["devices upsert", /INTO devices/],
    ["begin/commit", /^(BEGIN|begin|COMMIT|commit)/],
  ];
  const rows = await sql<Array<{ query: string; calls: string; ms: number; wal: string; fpi: string }>>`
    SELECT query, calls::text, total_exec_time AS ms, wal_bytes::text AS wal, wal_fpi::text AS fpi
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`;
  const by = new Map<string, { calls: number; ms: number; wal: number; fpi: number }>();
  for (const r of rows) {
    const kind = kinds.find(([, re]) => re.test(r.query.trim()))?.[0] ?? "other";
    const k = by.get(kind) ?? { calls: 0, ms: 0, wal: 0, fpi: 0 };
    k.calls += Number(r.calls);
    k.ms += r.ms;
    k.wal += Number(r.wal);
    k.fpi += Number(r.fpi);
    by.set(kind, k);
  }
  for (const [kind, k] of by) {
    const per = (x: number) => (x / inserted).toFixed(3);
    console.log(
      JSON.stringify({
        kind,
        calls: k.calls,
        execUsPerReading: per(k.ms * 1000),
        walBytesPerReading: per(k.wal),
        fpiPerReading: per(k.fpi),
      }),
    );
  }
  const tables = await sql<Array<{ t: string; ins: string; upd: string; hot: string }>>`
    SELECT relname AS t, n_tup_ins::text AS ins, n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot
    FROM pg_stat_user_tables WHERE relname IN ('devices', 'readings_1m') ORDER BY 1`;
  for (const t of tables)
    console.log(JSON.stringify({ table: t.t, inserts: t.ins, updates: t.upd, hotUpdates: t.hot }));
  const [w] = await sql<Array<{ records: string; fpi: string; bytes: string }>>`
    SELECT wal_records::text AS records, wal_fpi::text AS fpi, wal_bytes::text AS bytes FROM pg_stat_wal`;
  console.log(
    JSON.stringify({
      wal: "run",
      recordsPerReading: (Number(w!.records) / inserted).toFixed(2),
      fpiPerReading: (Number(w!.fpi) / inserted).toFixed(3),
      bytesPerReading: (Number(w!.bytes) / inserted).toFixed(1),
    }),
  );
}
