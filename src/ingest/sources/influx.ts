/**
 * The InfluxDB line-protocol source (docs/protocols/influx-line-protocol.md): the write APIs of
 * InfluxDB 1 (`POST /write`), 2 (`POST /api/v2/write`) and 3 (`POST /api/v3/write_lp`), and what
 * their clients call around them: `GET|HEAD /ping` (204, no key) and `/query`, which answers
 * `CREATE DATABASE` (Telegraf's v1 output sends it at start) and refuses every other statement.
 * The key (influx-auth) names the tenant; org, bucket and db are accepted and not used.
 * Errors are InfluxDB's JSON (influx-errors); writing is influx-write.
 */
import { Hono } from "hono";
import type { Config } from "../../config/schema.ts";
import type { LineMapping } from "../../core/line-protocol-map.ts";
import { z } from "zod";
import { type KeyResolver, requireTenant } from "../../http/auth.ts";
import { readBody } from "../../http/body.ts";
import { mountGroup, ok, retryAfter as retryAfterDoc, routesOf } from "../../http/route.ts";
import { influxKey } from "./influx-auth.ts";
import { influxError, influxGuard, influxHandler } from "./influx-errors.ts";
import { type InfluxDeps, writeLines } from "./influx-write.ts";

/** What /ping reports in X-Influxdb-Version: the InfluxDB 1 API this server speaks. */
export const INFLUX_VERSION = "1.8.10";

const route = routesOf<InfluxDeps>();
const lines = { "text/plain": z.string().meta({ description: "InfluxDB line protocol, one point per line" }) };
const v2Error = z.object({ code: z.string(), message: z.string() }).meta({ id: "InfluxV2Error" });
const v1Error = z.object({ error: z.string() }).meta({ id: "InfluxV1Error" });

function writeResponses(error: z.ZodType) {
  return {
    204: ok("every line stored (or already stored: a re-sent batch makes no new rows)"),
    400: ok(
      "unknown precision, empty body, or bad lines: the other lines ARE stored (partial write); the first bad lines are named",
      error,
    ),
    401: ok("missing or unknown key", error),
    403: ok("tenant suspended, or no line is from a device the tenant's policy admits", error),
    413: ok(
      "body larger than TELEMETRY_MAX_BODY (as sent or gzip-decoded) or more lines than max_records_per_request",
      error,
    ),
    415: ok("Content-Encoding other than gzip, deflate, identity", error),
    429: { ...ok("rate limited: retry the same batch after Retry-After", error), headers: retryAfterDoc },
    503: {
      ...ok("broker or key store unavailable: nothing may be assumed stored, retry", error),
      headers: retryAfterDoc,
    },
  };
}

const CREATE_DATABASE = /^\s*CREATE\s+DATABASE\s+("(?:[^"\\]|\\.)*"|[^\s;]+)[^;]*(;\s*|$)/i;

/** True when `q` is one or more CREATE DATABASE statements and nothing else. */
export function onlyCreateDatabase(q: string): boolean {
  let rest = q.trim();
  if (rest === "") return false;
  while (rest !== "") {
    const m = CREATE_DATABASE.exec(rest);
    if (!m) return false;
    rest = rest.slice(m[0].length).trim();
  }
  return true;
}

const queryRoute = (method: "get" | "post") =>
  route({
    method,
    path: "/query",
    tag: "line protocol",
    summary: `InfluxDB 1 query (${method.toUpperCase()}): CREATE DATABASE only`,
    description:
      "Telegraf's influxdb output and InfluxDB 1 clients create their database first: CREATE DATABASE is answered 200 and does nothing (the key names the tenant). This server does not answer InfluxQL queries: any other statement is 400.",
    auth: "tenant",
    query: z.object({ q: z.string().optional(), db: z.string().optional() }),
    responses: {
      200: ok('CREATE DATABASE: {"results":[{"statement_id":0}]}'),
      400: ok("missing q, or a statement other than CREATE DATABASE", v1Error),
      401: ok("missing or unknown key", v1Error),
    },
    handler: influxHandler(async function influxQuery(c, deps) {
      let q = c.req.query("q");
      if (q === undefined && method === "post") {
        const type = c.req.header("content-type") ?? "";
        if (type.startsWith("application/x-www-form-urlencoded"))
          q = new URLSearchParams(await readBody(c.req.raw, deps.options.maxBodyBytes)).get("q") ?? undefined;
      }
      if (!q) return influxError(c, 400, 'missing required parameter "q"');
      if (onlyCreateDatabase(q)) return c.json({ results: [{ statement_id: 0 }] }, 200);
      return influxError(
        c,
        400,
        "this server does not answer InfluxQL queries: /query takes only CREATE DATABASE (accepted, nothing to create); read data through /api/v1 (docs/api.md)",
      );
    }),
  });

export const influxRoutes = [
  route({
    method: "post",
    path: "/api/v2/write",
    tag: "line protocol",
    summary: "InfluxDB 2 write (line protocol)",
    description:
      "Authorization: Token <key> (or Bearer). precision ns (default), us, ms, s. org and bucket are accepted and not used: the key names the tenant. Content-Encoding gzip works.",
    auth: "tenant",
    query: z.object({
      org: z.string().optional(),
      bucket: z.string().optional(),
      precision: z.enum(["ns", "us", "ms", "s"]).optional(),
    }),
    body: lines,
    responses: writeResponses(v2Error),
    handler: influxHandler((c, deps) => writeLines(c, deps, "v2")),
  }),
  route({
    method: "post",
    path: "/write",
    tag: "line protocol",
    summary: "InfluxDB 1 write (line protocol)",
    description:
      "The key as the password: ?u=<any>&p=<key>, Basic auth, or Authorization: Token/Bearer <key>. precision n/ns (default), u/us, ms, s, m, h. db and rp are accepted and not used.",
    auth: "tenant",
    query: z.object({
      db: z.string().optional(),
      rp: z.string().optional(),
      precision: z.enum(["n", "ns", "u", "us", "ms", "s", "m", "h"]).optional(),
      u: z.string().optional(),
      p: z.string().optional().meta({ description: "the api key" }),
    }),
    body: lines,
    responses: writeResponses(v1Error),
    handler: influxHandler((c, deps) => writeLines(c, deps, "v1")),
  }),
  route({
    method: "post",
    path: "/api/v3/write_lp",
    tag: "line protocol",
    summary: "InfluxDB 3 write (line protocol)",
    description:
      "Authorization: Token or Bearer <key>. precision auto (default: guessed from each timestamp's magnitude), nanosecond/ns, microsecond/us, millisecond/ms, second/s. db is accepted and not used.",
    auth: "tenant",
    query: z.object({ db: z.string().optional(), precision: z.string().optional() }),
    body: lines,
    responses: writeResponses(v1Error),
    handler: influxHandler((c, deps) => writeLines(c, deps, "v3")),
  }),
  queryRoute("get"),
  queryRoute("post"),
];

export const influxPublicRoutes = [
  routesOf<unknown>()({
    method: "get",
    path: "/ping",
    tag: "line protocol",
    summary: "InfluxDB ping (GET or HEAD): 204, no key needed",
    description:
      'As InfluxDB 1 answers it: 204, or with verbose=true 200 {"version"} (what the Arduino InfluxDB client\'s validateConnection expects).',
    auth: "none",
    query: z.object({ verbose: z.string().optional() }),
    responses: {
      200: ok("verbose=true", z.object({ version: z.string() })),
      204: { ...ok("alive"), headers: { "X-Influxdb-Version": "the InfluxDB API version spoken" } },
    },
    handler: (c) => {
      const headers = { "X-Influxdb-Version": INFLUX_VERSION, "X-Influxdb-Build": "OSS" };
      if (c.req.query("verbose") === "true") return c.json({ version: INFLUX_VERSION }, 200, headers);
      return c.body(null, 204, headers);
    },
  }),
];

/** The server's mapping settings. */
export const lineMapping = (config: Config): LineMapping => ({
  deviceTags: config.lpDeviceTags,
  bareMeasurements: config.lpBareMeasurements,
  latFields: config.lpLatFields,
  lonFields: config.lpLonFields,
  seriesTags: config.lpSeriesTags,
});

const WRITE_PATHS = ["/api/v2/write", "/write", "/api/v3/write_lp"];

/** The line-protocol routes behind the tenant key (errors in InfluxDB's shape), /ping, and 405 for other methods. */
export function mountInflux(resolve: KeyResolver, deps: InfluxDeps): Hono {
  const app = new Hono();
  app.route("/", mountGroup("tenant", influxGuard(requireTenant(resolve, influxKey)), influxRoutes, deps));
  app.route("/", mountGroup("none", null, influxPublicRoutes, undefined));
  for (const path of WRITE_PATHS)
    app.all(path, (c) =>
      influxError(c, 405, `${c.req.method} ${path} is not allowed: write with POST`, { headers: { Allow: "POST" } }),
    );
  app.all("/query", (c) =>
    influxError(c, 405, `${c.req.method} /query is not allowed: use GET or POST`, { headers: { Allow: "GET, POST" } }),
  );
  return app;
}
