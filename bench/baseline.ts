/** Runs the naive baseline (bench/naive.ts) as its own process under the same batched load as the server. */
import { join } from "node:path";
import { createSql } from "../src/db/client.ts";
import { freePort, waitFor } from "../src/embedded/process.ts";
import type { LocalPostgres } from "../src/embedded/types.ts";
import { migrate } from "../src/db/migrate.ts";
import { fmt, ROOT, rowCount, runLoad } from "./env.ts";
import type { Row } from "./phases.ts";

export async function naiveEndToEnd(
  natsUrl: string,
  pg: LocalPostgres,
  seconds: number,
  connections: number,
): Promise<{ rows: Row[]; e2e: number }> {
  await pg.createDatabase("naive");
  const sql = createSql(pg.urlFor("naive"), { max: 1, name: "bench-naive" });
  await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });
  const port = await freePort();
  const proc = Bun.spawn({
    cmd: [process.execPath, join(ROOT, "bench/naive.ts"), String(port), natsUrl, pg.urlFor("naive")],
    stdout: "ignore",
    stderr: "inherit",
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(async () => (await fetch(url, { method: "POST", body: "" }).catch(() => null)) !== null, {
      timeoutMs: 30_000,
      what: "naive baseline up",
    });
    const t0 = performance.now();
    const load = await runLoad(url, "batch", "naive", seconds, connections);
    await waitFor(async () => (await rowCount(sql)) >= load.accepted, {
      timeoutMs: 900_000,
      intervalMs: 500,
      what: "naive baseline to commit everything",
    });
    const drained = (performance.now() - t0) / 1000;
    const e2e = load.accepted / drained;
    return {
      e2e,
      rows: [
        [
          `Naive baseline (per-record js.publish, plain consumer, per-batch unnest insert), same load, ${seconds} s`,
          `${fmt(e2e)} readings/s end to end`,
          `accepted ${fmt(load.accepted / load.elapsed)} readings/s, p99 ${load.p99} ms; last commit ${drained.toFixed(1)} s after the start`,
        ],
      ],
    };
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
    await sql.end();
  }
}
