/** The HTTP surface of a process: health and readiness always, plus the routes of its roles; one log line per request. */
import { Hono } from "hono";
import { z } from "zod";
import { requestLog } from "../lib/log.ts";
import { metrics, registry } from "../lib/metrics.ts";
import { DEFAULT_MAX_BODY } from "./body.ts";
import { onError, notFound } from "./errors.ts";
import { mountGroup, ok, page, routesOf } from "./route.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** TELEMETRY_MAX_BODY, for the routes that read a body (http/body.ts). */
    maxBodyBytes: number;
    /** The request's path as it may be logged (loggedPath). */
    loggedPath: string;
  }
}

export interface ReadyCheck {
  name: string;
  check: () => Promise<boolean>;
}

/** Probes (health, readiness, scrapes) every few seconds would drown the log: debug. Server errors: warn. */
const PROBES = new Set(["/health", "/ready", "/metrics"]);
export function requestLevel(path: string, status: number): "debug" | "info" | "warn" {
  return status >= 500 ? "warn" : PROBES.has(path) ? "debug" : "info";
}

/**
 * The path as the log shows it: after a prefix whose paths carry a key (`/osmand/<key>`), the
 * rest is `[redacted]`, whether or not a route matched. Query strings are never logged.
 */
export function loggedPath(path: string, secretPaths: readonly string[]): string {
  if (PROBES.has(path)) return path;
  const lower = path.toLowerCase();
  for (const p of secretPaths) if (lower.startsWith(p) && path.length > p.length) return `${p}[redacted]`;
  return path;
}

const route = routesOf<{ checks: ReadyCheck[]; isShuttingDown: () => boolean }>();
const readySchema = z.object({
  ready: z.boolean(),
  shutting_down: z.boolean(),
  checks: z.record(z.string(), z.boolean()),
});

/** Health, readiness and metrics: in every process, without auth. */
export const serviceRoutes = [
  route({
    method: "get",
    path: "/health",
    tag: "service",
    summary: "Liveness: the process answers",
    auth: "none",
    responses: { 200: ok("alive", z.object({ status: z.literal("ok") })) },
    handler: (c) => c.json({ status: "ok" }),
  }),
  route({
    method: "get",
    path: "/ready",
    tag: "service",
    summary: "Readiness: NATS (and, for writer/evaluator/api, the database) answer",
    auth: "none",
    responses: { 200: ok("ready", readySchema), 503: ok("not ready, or shutting down", readySchema) },
    handler: async function ready(c, { checks, isShuttingDown }) {
      const results = await Promise.all(
        checks.map(async (ch) => [ch.name, await ch.check().catch(() => false)] as const),
      );
      const ready = !isShuttingDown() && results.every(([, ok]) => ok);
      return c.json({ ready, shutting_down: isShuttingDown(), checks: Object.fromEntries(results) }, ready ? 200 : 503);
    },
  }),
  route({
    method: "get",
    path: "/metrics",
    tag: "service",
    summary: "Prometheus metrics of this process",
    auth: "none",
    responses: page("Prometheus text format", "text/plain"),
    handler: async function prometheus(c) {
      return c.text(await registry.metrics(), 200, { "Content-Type": registry.contentType });
    },
  }),
];

export function buildApp(
  routes: Hono<any>[],
  checks: ReadyCheck[],
  isShuttingDown: () => boolean,
  opts: { maxBodyBytes?: number; secretPaths?: readonly string[] } = {},
): Hono {
  const app = new Hono();
  app.onError(onError);
  app.notFound(notFound);
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;

  app.use(async function countAndLogRequests(c, next) {
    const start = performance.now();
    c.set("maxBodyBytes", maxBodyBytes);
    const path = loggedPath(c.req.path, opts.secretPaths ?? []);
    c.set("loggedPath", path);
    await next();
    const status = c.res.status;
    metrics.requests.inc({ route: `${c.req.method} ${c.req.routePath}`, status: String(status) });
    const level = requestLevel(path, status);
    const log = requestLog();
    if (log.isLevelEnabled(level)) {
      // Fixed fields only: never headers, bodies or query strings, and the path without a key in it.
      const tenant = (c.var as { tenant?: string }).tenant;
      log[level](
        {
          method: c.req.method,
          path,
          route: c.req.routePath,
          status,
          ms: Math.round((performance.now() - start) * 100) / 100,
          ...(tenant ? { tenant } : {}),
        },
        "request",
      );
    }
  });
  app.route("/", mountGroup("none", null, serviceRoutes, { checks, isShuttingDown }));
  app.use("/api/*", async function refuseWhileShuttingDown(c, next) {
    if (isShuttingDown())
      return c.json({ error: { code: "shutting_down", message: "the server is shutting down; retry shortly" } }, 503, {
        "Retry-After": "1",
      });
    await next();
  });
  for (const r of routes) app.route("/", r);
  return app;
}
