/** The export route alone on a Bun.serve, for bench/export-memory.ts: prints its port, serves /x, /gc, /stats. */
import { ExportSlots, exportRoutes } from "../src/api/export.ts";
import { createSql } from "../src/db/client.ts";
import { createExportSql } from "../src/db/export-socket.ts";

const [, , variant, url] = process.argv;
const sql = createSql(url!, { max: 4, name: "ingest+writer+api" });
const deps = {
  sql,
  exports: {
    mode: (variant === "keyset" ? "keyset" : "copy") as "copy" | "keyset",
    slots: new ExportSlots(4),
    sql: variant === "plain" ? sql : createExportSql(url!, { slots: 4, name: "ingest+writer+api" }),
  },
};
const handler = exportRoutes[0]!.handler as unknown as (c: unknown, d: typeof deps) => Response;
let peak = { heap: 0, used: 0, external: 0, ab: 0 };
setInterval(() => {
  const m = process.memoryUsage();
  peak = {
    heap: Math.max(peak.heap, m.heapTotal),
    used: Math.max(peak.used, m.heapUsed),
    external: Math.max(peak.external, m.external),
    ab: Math.max(peak.ab, m.arrayBuffers),
  };
}, 50);
const mib = (n: number) => (n / 2 ** 20).toFixed(0);
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch(req) {
    const u = new URL(req.url);
    if (u.pathname === "/gc") {
      Bun.gc(true);
      peak = { heap: 0, used: 0, external: 0, ab: 0 };
      return new Response("ok");
    }
    if (u.pathname === "/stats") {
      const m = process.memoryUsage();
      return new Response(
        `now heapTotal ${mib(m.heapTotal)} used ${mib(m.heapUsed)} ext ${mib(m.external)}; peak heapTotal ${mib(peak.heap)} used ${mib(peak.used)} ext ${mib(peak.external)} ab ${mib(peak.ab)}`,
      );
    }
    if (process.env.XDRAIN)
      return (async () => {
        const { exportChunks } = await import("../src/db/export.ts");
        let n = 0;
        const q = { tenant: "acme", from: new Date(0), to: new Date(), devices: null, metrics: null };
        for await (const c of exportChunks(
          deps.exports.sql,
          q,
          (u.searchParams.get("format") ?? "csv") as "csv",
          "copy",
        ))
          n += c.length;
        return new Response(String(n));
      })();
    const q = Object.fromEntries(u.searchParams);
    const c = {
      req: { query: () => q, header: (n: string) => req.headers.get(n) ?? undefined },
      get: () => "acme",
    };
    return handler(c, deps);
  },
});
console.log(server.port);
