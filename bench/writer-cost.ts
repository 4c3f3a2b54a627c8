/**
 * CPU per reading of the writer's database path alone, on the bench's rows (bench/data.ts):
 * decode the planned envelopes, write them with writeBatch in the writer's batch size on
 * `connections` connections, and report wall time, this process's CPU and PostgreSQL's (all
 * backends) per reading.
 *   bun bench/writer-cost.ts [readings=300000] [batch=2000] [connections=2]
 * Experiments (decision 0520): VARIANT=copy|rollups|devices writes only the readings' binary COPY,
 * or it plus the rollups or the devices, in the same transaction shape; VARIANT=recompute the COPY,
 * then the batch's touched minutes recomputed from `readings`; SETUP='<sql>' runs first
 * (e.g. a different key on `readings`).
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
import { batchRows, COPY_COLUMNS, type Row } from "../src/writer/rows.ts";
import { copyBinary } from "../src/writer/copy-binary.ts";
import type { Envelope } from "../src/core/envelope.ts";
import { plannedMessages } from "./data.ts";
import { treeCpuSeconds } from "./env.ts";

configureLogger("warn", true);
const [readingsArg = "300000", batchArg = "2000", connArg = "2"] = process.argv.slice(2);
const readings = Number(readingsArg);
const batchSize = Number(batchArg);
const connections = Number(connArg);
const work = mkdtempSync(join(tmpdir(), "telemetry-writer-cost-"));
chmodSync(work, 0o755);
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
await using pg = await startLocalPostgres({ dataDir: join(work, "pg") });
const messages = plannedMessages(`wc${Date.now()}`, readings, 25);
const sql = createSql(pg.url, { max: connections, name: "writer-cost" });
await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });

const variant = process.env.VARIANT ?? "";
if (process.env.SETUP) await sql.unsafe(process.env.SETUP);
async function experiment(v: string, batch: Envelope[]): Promise<number> {
  const rows = batchRows(batch);
  await sql.begin(async (tx) => {
    const stream = await tx.unsafe(`COPY readings (${COPY_COLUMNS}) FROM STDIN (FORMAT binary)`).writable();
    await new Promise<void>((resolve, reject) => {
      stream.on("error", reject);
      stream.on("finish", resolve);
      stream.end(copyBinary(rows));
    });
    if (v === "rollups") await upsertRollups(tx, rows);
    if (v === "devices") await upsertDevices(tx, summarizeDevices(batch));
  });
  if (v === "recompute") await recompute(rows);
  return rows.length;
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
await sql.end();
