/**
 * Evaluation throughput with 1, 2, ... evaluator processes (decision 0550):
 *   bun bench/evaluator-scale.ts [processes=1,2] [steps=300] [devices=64] [rounds=2] [partitions=16]
 * For each count: a fresh nats-server and database, one above_threshold rule, the evaluator
 * processes (test/helpers/evaluator-process.ts) started and their partitions spread, then `steps`
 * committed batches of `devices` devices published as the writer does (cut into the partitions);
 * timed from the first publish until every evaluator consumer is drained. Prints events/s and
 * readings/s evaluated. Everything shares this machine's cores with PostgreSQL and nats-server.
 */
import { committedMessageId, encodeCommitted, type CommittedBatch } from "../src/core/committed.ts";
import { uuidv5 } from "../src/core/event-id.ts";
import { partitionNames, partitionSubject, splitByPartition } from "../src/core/partition.ts";
import { createSql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { connectBroker } from "../src/nats/connection.ts";
import { evaluatorBacklog } from "../src/nats/evaluator-backlog.ts";
import { KvBucket } from "../src/nats/kv.ts";
import { check, freshDatabase, startNats, stopSharedServices } from "../test/helpers/services.ts";

const counts = (process.argv[2] ?? "1,2").split(",").map(Number);
const steps = Number(process.argv[3] ?? 300);
const devices = Number(process.argv[4] ?? 64);
const rounds = Number(process.argv[5] ?? 2);
const partitions = Number(process.argv[6] ?? 16);
const STREAM = "TELEMETRY_COMMITTED";
const T0 = Date.UTC(2026, 0, 5);

function batchAt(step: number): CommittedBatch {
  const ts = T0 + step * 60_000;
  const ids = Array.from({ length: devices }, (_, d) => `dev-${d}`);
  return {
    tenant: "bench",
    series: ids.map((id, d) => ({
      deviceId: id,
      metric: "temp",
      ts,
      value: (step + d) % 7 < 2 ? 60 : 40,
      eventId: uuidv5(`${id}|${step}`),
      receivedAt: ts,
    })),
    positions: [],
    devices: ids.map((id) => ({ deviceId: id, lastTs: ts, receivedAt: ts })),
  };
}

async function run(n: number): Promise<{ events: number; seconds: number }> {
  await using nats = await startNats();
  const url = await freshDatabase("evscale");
  const sql = createSql(url, { max: 2, name: "bench" });
  const broker = await connectBroker(nats.url, { name: "evaluator-scale" });
  const procs: Bun.Subprocess[] = [];
  try {
    await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });
    await sql`INSERT INTO rules (id, tenant, name, severity, metric, condition, cooldown_seconds)
              VALUES (${crypto.randomUUID()}, 'bench', 'hot', 'warning', 'temp', ${sql.json({ type: "above_threshold", threshold: 50 })}, 300)`;
    await broker.jsm.streams.add({ name: STREAM, subjects: ["telemetry.committed.v1.>"] });
    for (let i = 0; i < n; i++) {
      const p = Bun.spawn(
        [process.execPath, "test/helpers/evaluator-process.ts", nats.url, url, "3000", String(partitions)],
        {
          stdout: "pipe",
          stderr: "inherit",
        },
      );
      procs.push(p);
      const reader = p.stdout.getReader();
      let text = "";
      while (!text.includes("READY")) text += new TextDecoder().decode((await reader.read()).value);
      void (async () => {
        while (!(await reader.read()).done);
      })();
    }
    const kv = await KvBucket.open(broker.js, broker.jsm, `${STREAM}_EVALUATORS`);
    const names = partitionNames(partitions);
    await check(
      async () => {
        const held = new Map<string, number>();
        for (const name of names) {
          const v = (await kv.get(`p.${name}`)).value;
          if (v) held.set(JSON.parse(v).holder, (held.get(JSON.parse(v).holder) ?? 0) + 1);
        }
        return held.size === n && [...held.values()].every((c) => c <= Math.ceil(names.length / n));
      },
      { what: "partitions spread", timeoutMs: 30_000 },
    );
    const started = performance.now();
    let events = 0;
    for (let s = 0; s < steps; s++) {
      const acks = splitByPartition(batchAt(s), partitions).map(({ partition, batch }) => {
        events++;
        return broker.js.publish(partitionSubject("bench", partition), encodeCommitted(batch), {
          msgID: committedMessageId(batch),
        });
      });
      await Promise.all(acks);
    }
    await check(
      async () => {
        const b = await evaluatorBacklog(broker.jsm, STREAM);
        return b.num_pending === 0 && b.num_ack_pending === 0;
      },
      { what: "drained", timeoutMs: 600_000, intervalMs: 20 },
    );
    return { events, seconds: (performance.now() - started) / 1000 };
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
    await broker.close();
    await sql.end();
  }
}

const rows: string[] = [];
try {
  for (let r = 0; r < rounds; r++)
    for (const n of counts) {
      const { events, seconds } = await run(n);
      rows.push(
        `| ${n} | ${r + 1} | ${events} | ${seconds.toFixed(1)} | ${Math.round(events / seconds)} | ${Math.round((steps * devices) / seconds)} |`,
      );
      console.error(rows.at(-1));
    }
} finally {
  await stopSharedServices();
}
console.log(`partitions: ${partitions}, ${steps} batches of ${devices} devices`);
console.log("| evaluator processes | round | events | seconds | events/s | readings/s |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const row of rows) console.log(row);
