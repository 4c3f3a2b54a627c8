/** The HTTP surface of a process: health and readiness always, plus the routes of its roles. */
import { Hono } from "hono";
import { metrics, registry } from "../lib/metrics.ts";
import { onError, notFound } from "./errors.ts";

export interface ReadyCheck {
  name: string;
  check: () => Promise<boolean>;
}

export function buildApp(routes: Hono<any>[], checks: ReadyCheck[], isShuttingDown: () => boolean): Hono {
  const app = new Hono();
  app.onError(onError);
  app.notFound(notFound);

  app.use(async function countRequests(c, next) {
    await next();
    metrics.requests.inc({ route: `${c.req.method} ${c.req.routePath}`, status: String(c.res.status) });
  });
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/metrics", async function prometheus(c) {
    return c.text(await registry.metrics(), 200, { "Content-Type": registry.contentType });
  });
  app.get("/ready", async function ready(c) {
    const results = await Promise.all(checks.map(async (ch) => [ch.name, await ch.check().catch(() => false)] as const));
    const ready = !isShuttingDown() && results.every(([, ok]) => ok);
    return c.json({ ready, shutting_down: isShuttingDown(), checks: Object.fromEntries(results) }, ready ? 200 : 503);
  });
  app.use("/api/*", async function refuseWhileShuttingDown(c, next) {
    if (isShuttingDown()) return c.json({ error: { code: "shutting_down", message: "the server is shutting down; retry shortly" } }, 503, { "Retry-After": "1" });
    await next();
  });
  for (const r of routes) app.route("/", r);
  return app;
}
