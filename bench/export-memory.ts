/**
 * Server RSS during a 1,000,000-row export, per variant of the export pipeline (docs/export.md).
 * A child process serves the export (bench/export-memory-server.ts VARIANT); this one reads it
 * with node:http without keeping it and samples the child's VmRSS every 50 ms.
 *   bun bench/export-memory.ts VARIANT…   (copy: as the server runs it; plain: COPY over postgres.js's
 *                                         own sockets, nothing freed early; keyset: PGlite's pages;
 *                                         CSVONLY=1: the CSV run only; XDRAIN=1: read the chunks in the
 *                                         server without sending them, the database side alone)
 */
import { request } from "node:http";
import { createGunzip } from "node:zlib";
import { createSql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { freshDatabase, stopSharedServices } from "../test/helpers/services.ts";
import { rssMiB } from "../test/fault/harness.ts";

const variants = process.argv.slice(2);
const url = await freshDatabase("exbench");
const sql = createSql(url, { max: 2, name: "bench" });
await migrate(sql, { timescale: "off" as never, retentionMs: null, compressAfterMs: 7 * 86_400_000 });
await sql`INSERT INTO readings (tenant, device_id, ts, event_id, lat, lon, metrics, received_at)
  SELECT 'acme', 'bulk-' || (i % 10), '2025-01-01T00:00:00Z'::timestamptz + i * interval '1 second', gen_random_uuid(),
         CASE WHEN i % 2 = 0 THEN 52.5 + (i % 1000) / 1e5 END, CASE WHEN i % 2 = 0 THEN 13.4 END,
         jsonb_build_object('temp', ((i % 400) / 10.0)::float8), now()
  FROM generate_series(0, 999999) AS i`;
await sql`VACUUM ANALYZE readings`;

function read(port: number, format: string, gzip: boolean): Promise<{ bytes: number; lines: number }> {
  return new Promise((resolve, reject) => {
    request(`http://127.0.0.1:${port}/x?format=${format}`, { headers: gzip ? { "accept-encoding": "gzip" } : {} })
      .on("response", (res) => {
        let bytes = 0;
        let lines = 0;
        const s = gzip ? res.pipe(createGunzip()) : res;
        s.on("data", (b: Buffer) => {
          bytes += b.length;
          for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) lines++;
        });
        s.on("end", () => resolve({ bytes, lines }));
        s.on("error", reject);
      })
      .on("error", reject)
      .end();
  });
}

for (const v of variants) {
  const runs: [string, boolean][] = [["csv", false]];
  if (!process.env.CSVONLY) runs.push(["ndjson", true]);
  for (const [format, gzip] of runs) {
    const child = Bun.spawn([process.execPath, "bench/export-memory-server.ts", v, url], {
      stdout: "pipe",
      stderr: "inherit",
    });
    const reader = child.stdout.getReader();
    const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
    await read(port, format, gzip); // warm up
    await Bun.sleep(300);
    await fetch(`http://127.0.0.1:${port}/gc`);
    await Bun.sleep(300);
    const idle = rssMiB(child.pid)!;
    let peak = idle;
    const timer = setInterval(() => (peak = Math.max(peak, rssMiB(child.pid) ?? 0)), 50);
    const t0 = performance.now();
    const r = await read(port, format, gzip);
    const ms = performance.now() - t0;
    clearInterval(timer);
    const stats = await (await fetch(`http://127.0.0.1:${port}/stats`)).text();
    console.log(
      `${v} ${format}${gzip ? "+gzip" : ""}: ${r.lines} lines ${(r.bytes / 1e6).toFixed(0)} MB ${(ms / 1000).toFixed(1)} s, RSS idle ${idle.toFixed(0)} peak ${peak.toFixed(0)} rise ${(peak - idle).toFixed(0)} MiB | ${stats}`,
    );
    child.kill();
    await child.exited;
  }
}
await sql.end();
await stopSharedServices();
