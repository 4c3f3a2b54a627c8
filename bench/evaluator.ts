/**
 * Evaluator cost per committed batch as distinct series grow: `bun bench/evaluator.ts [1000,10000,100000]`.
 * Starts a local PostgreSQL, gives tenant "bench" three rules on metric "temp" (above_threshold,
 * deviation_from_mean over 30 min, rate_of_change), fills 10 one-minute rollup buckets per series,
 * then times evaluateBatch for a batch holding one reading of every series (cold: no rule state
 * yet; warm: the next batch, with state for every (rule, device)). Prints a markdown table.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { v4 as uuidv4 } from "uuid";
import type { CommittedBatch } from "../src/core/committed.ts";
import type { Rule } from "../src/core/rules/schema.ts";
import { createSql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { startLocalPostgres } from "../src/embedded/postgres.ts";
import { evaluateBatch } from "../src/evaluator/evaluate.ts";
import { configureLogger } from "../src/lib/log.ts";

configureLogger("warn", true);
const sizes = (process.argv[2] ?? "1000,10000,100000").split(",").map(Number);
const work = mkdtempSync(join(tmpdir(), "telemetry-evalbench-"));
chmodSync(work, 0o755);
const pg = await startLocalPostgres({ dataDir: join(work, "pg") });
const rows: string[] = [];
try {
  for (const n of sizes) {
    const db = `bench_${n}`;
    await pg.createDatabase(db);
    const sql = createSql(pg.urlFor(db), { max: 4, name: "bench" });
    await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 86_400_000 });
    const base = Date.UTC(2026, 0, 1, 12, 0);
    const rules: Rule[] = [
      { type: "above_threshold", threshold: 90 },
      { type: "deviation_from_mean", k: 4, window_minutes: 30 },
      { type: "rate_of_change", limit_per_minute: 50, direction: "either" },
    ].map((condition, i) => ({
      id: uuidv4(),
      tenant: "bench",
      name: `r${i}`,
      enabled: true,
      severity: "warning",
      metric: "temp",
      condition: condition as Rule["condition"],
      for_seconds: 0,
      cooldown_seconds: 900,
    }));
    for (const r of rules) {
      await sql`INSERT INTO rules (id, tenant, name, severity, metric, condition) VALUES (${r.id}, 'bench', ${r.name}, 'warning', 'temp', ${sql.json(r.condition as never)})`;
    }
    await sql`
      INSERT INTO readings_1m (tenant, device_id, metric, bucket, count, sum, sum_sq, min, max)
      SELECT 'bench', 'd' || d, 'temp', ${new Date(base).toISOString()}::timestamptz - (m || ' minutes')::interval, 6, 120, 2404, 19, 21
      FROM generate_series(1, ${n}) d, generate_series(1, 10) m`;
    await sql`ANALYZE`;
    const batch = (minute: number, hotEvery: number): CommittedBatch => ({
      tenant: "bench",
      series: Array.from({ length: n }, (_, d) => ({
        deviceId: `d${d + 1}`,
        metric: "temp",
        ts: base + minute * 60_000,
        value: d % hotEvery === 0 ? 95 : 20,
        eventId: uuidv4(),
        receivedAt: base + minute * 60_000,
      })),
      positions: [],
      devices: [],
    });
    for (const [label, minute] of [
      ["cold (no state yet)", 0],
      ["warm (state for every pair)", 1],
    ] as const) {
      const b = batch(minute, 100);
      const started = performance.now();
      const r = await evaluateBatch(sql, rules, b);
      const ms = performance.now() - started;
      rows.push(
        `| ${n.toLocaleString("en")} | ${label} | ${r.units.toLocaleString("en")} | ${ms.toFixed(0)} ms | ${((ms * 1000) / r.units).toFixed(1)} µs | ${r.opened} |`,
      );
      console.error(rows.at(-1));
    }
    await sql.end();
  }
} finally {
  await pg.stop();
  rmSync(work, { recursive: true, force: true });
}
console.log(
  "\n| Distinct series in the batch | Batch | (rule, series) pairs | Evaluation time | Per pair | Alerts opened |\n| --- | --- | --- | --- | --- | --- |",
);
for (const r of rows) console.log(r);
