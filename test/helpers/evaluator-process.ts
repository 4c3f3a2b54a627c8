/**
 * One evaluator as its own process, for the multi-evaluator tests and the scale probe:
 *   bun test/helpers/evaluator-process.ts <nats url> <database url> <lease ms> [partitions]
 * Prints "READY <holder>" once it holds its first partitions; SIGTERM stops it cleanly (leases
 * released), SIGKILL does not.
 */
import { createSql } from "../../src/db/client.ts";
import { startEvaluator } from "../../src/evaluator/evaluator.ts";
import { connectBroker } from "../../src/nats/connection.ts";

const [natsUrl, databaseUrl, leaseMs, partitions] = process.argv.slice(2);
const broker = await connectBroker(natsUrl!, { name: "evaluator-process" });
const sql = createSql(databaseUrl!, { max: 4, name: "evaluator" });
const evaluator = await startEvaluator(broker, sql, {
  stream: "TELEMETRY_COMMITTED",
  durable: "evaluator",
  noDataIntervalMs: 3_600_000,
  leaseTtlMs: Number(leaseMs),
  partitions: partitions ? Number(partitions) : undefined,
});
process.stdout.write(`READY ${evaluator.holder}\n`);
process.on("SIGTERM", async () => {
  await evaluator.stop(5_000);
  process.stdout.write(`STOPPED ${JSON.stringify(evaluator.stats)}\n`);
  await sql.end({ timeout: 1 });
  await broker.close();
  process.exit(0);
});
