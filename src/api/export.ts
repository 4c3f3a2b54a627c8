/**
 * GET /api/v1/readings/export: a tenant's readings in a range as CSV or NDJSON, streamed from the
 * database chunk by chunk (db/export.ts). The response is a pull stream: the next chunk is read
 * only when the HTTP layer has written the previous one, so a slow client slows the query instead
 * of filling the server's memory; a client that leaves cancels the stream, which closes the cursor.
 */
import type { Context } from "hono";
import { z } from "zod";
import { CONTENT_TYPES, CSV_HEADER, type ExportFormat } from "../core/export-format.ts";
import { deviceIdProblem, METRIC_NAME_PATTERN } from "../core/record.ts";
import type { Sql } from "../db/client.ts";
import { createExportSql } from "../db/export-socket.ts";
import { exportChunks, type ExportMode, type ExportQuery } from "../db/export.ts";
import { HttpError } from "../http/errors.ts";
import { routesOf } from "../http/route.ts";
import { timeParam } from "../http/validate.ts";
import { logger } from "../lib/log.ts";
import { scrapeGauge } from "../lib/metrics.ts";

const log = logger("export");

/** At most this many devices or metrics in one filter. */
export const MAX_FILTER_ITEMS = 100;

/** Exports running at once (each holds a database connection while it runs). */
export class ExportSlots {
  private taken = 0;
  constructor(readonly max: number) {}
  get running(): number {
    return this.taken;
  }
  take(): boolean {
    if (this.taken >= this.max) return false;
    this.taken++;
    return true;
  }
  give(): void {
    this.taken--;
  }
}

export interface ExportSettings {
  mode: ExportMode;
  slots: ExportSlots;
  /** The export's own client (db/export-socket.ts) in copy mode; the shared one otherwise. */
  sql?: Sql;
}

/**
 * Exports run at most `poolMax / 4` at once (decision 0600). PostgreSQL: COPY on a client of their
 * own with that many connections (db/export-socket.ts, decision 0606); PGlite (or
 * TELEMETRY_EXPORT_MODE=keyset): keyset pages on the shared client (one backend: a running COPY
 * would hold it for the whole export; PGlite behind a socket has no COPY TO STDOUT).
 */
export function exportSettings(
  keyset: boolean,
  url: string,
  poolMax: number,
  name: string,
  onStop: (fn: () => Promise<void>) => void,
): ExportSettings {
  const slots = new ExportSlots(Math.max(1, Math.floor(poolMax / 4)));
  scrapeGauge(
    "telemetry_exports_running",
    "Readings exports running in this process (each holds an export slot until its database connection is free again)",
    [],
    async (set) => set({}, slots.running),
  );
  if (keyset) return { mode: "keyset", slots };
  const sql = createExportSql(url, { slots: slots.max, name });
  onStop(() => sql.end({ timeout: 1 }));
  return { mode: "copy", slots, sql };
}

export interface ExportDeps {
  sql: Sql;
  exports: ExportSettings;
}

export const exportQuery = z.object({
  from: z.string().optional().meta({ description: "start, inclusive: RFC 3339 or epoch ms (default: everything)" }),
  to: z.string().optional().meta({ description: "end, exclusive: RFC 3339 or epoch ms (default: now)" }),
  device: z
    .string()
    .optional()
    .meta({ description: `device ids, comma-separated (at most ${MAX_FILTER_ITEMS})` }),
  metric: z
    .string()
    .optional()
    .meta({ description: `metric names, comma-separated (at most ${MAX_FILTER_ITEMS})` }),
  format: z.enum(["csv", "ndjson"]).optional().meta({ description: "csv (default) or ndjson" }),
});

const bad = (code: string, message: string) => new HttpError(400, code, message);

function time(name: string, text: string | undefined, dflt: Date): Date {
  if (text === undefined) return dflt;
  const r = timeParam.safeParse(text);
  if (!r.success) throw bad("invalid_time", `${name}: ${r.error.issues[0]?.message ?? "not a time"}`);
  if (Number.isNaN(r.data.getTime())) throw bad("invalid_time", `${name}: out of range`);
  return r.data;
}

function list(name: string, text: string | undefined, problem: (item: string) => string | null): string[] | null {
  if (text === undefined) return null;
  const items = [...new Set(text.split(","))];
  if (items.length > MAX_FILTER_ITEMS) throw bad(`invalid_${name}`, `at most ${MAX_FILTER_ITEMS} ${name}s`);
  for (const item of items) {
    const p = problem(item);
    if (p) throw bad(`invalid_${name}`, `${name} ${JSON.stringify(item.slice(0, 140))}: ${p}`);
  }
  return items;
}

/** The request's parameters, each refused with its own code (invalid_time, invalid_range, …). */
export function parseExport(c: Context, tenant: string): { query: ExportQuery; format: ExportFormat } {
  const known = new Set(Object.keys(exportQuery.shape));
  for (const k of Object.keys(c.req.query()))
    if (!known.has(k)) throw bad("invalid_query", `unknown parameter ${JSON.stringify(k.slice(0, 64))}`);
  const p = c.req.query();
  const format = p.format ?? "csv";
  if (format !== "csv" && format !== "ndjson") throw bad("invalid_format", "format must be csv or ndjson");
  const to = time("to", p.to, new Date());
  const from = time("from", p.from, new Date(0));
  if (from.getTime() >= to.getTime()) throw bad("invalid_range", "from must be before to");
  const devices = list("device", p.device, deviceIdProblem);
  const metrics = list("metric", p.metric, (m) => (METRIC_NAME_PATTERN.test(m) ? null : "is not a metric name"));
  return { query: { tenant, from, to, devices, metrics }, format };
}

const wantsGzip = (accept: string | undefined) =>
  (accept ?? "").split(",").some((part) => {
    const [coding, ...params] = part.trim().split(";");
    const q = params.map((x) => x.trim()).find((x) => x.startsWith("q="));
    return coding?.trim().toLowerCase() === "gzip" && (q === undefined || Number(q.slice(2)) > 0);
  });

/**
 * The export as a pull stream of UTF-8 chunks; the slot is given back when it has ended, failed or
 * been cancelled, and its database connection is free again.
 */
function exportStream(deps: ExportDeps, query: ExportQuery, format: ExportFormat): ReadableStream<Uint8Array> {
  const abort = new AbortController();
  const it = exportChunks(deps.exports.sql ?? deps.sql, query, format, deps.exports.mode, undefined, abort.signal);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    deps.exports.slots.give();
  };
  let started = false;
  let cancelled = false;
  let pending: Promise<unknown> | null = null;
  // The chunk handed over last: the response (or the gzip stream) has taken it by the time it pulls
  // again, so its memory is freed now rather than at the next collection (decision 0606).
  let sent: Uint8Array | null = null;
  const free = () => {
    (sent?.buffer as ArrayBuffer | undefined)?.transfer(0);
    sent = null;
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        free();
        if (!started && format === "csv") {
          started = true;
          controller.enqueue(new TextEncoder().encode(CSV_HEADER));
          return;
        }
        started = true;
        try {
          const next = await (pending = it.next());
          pending = null;
          if (cancelled) return;
          if (next.done) {
            release();
            controller.close();
            return;
          }
          controller.enqueue((sent = next.value));
        } catch (err) {
          pending = null;
          release();
          if (cancelled) return;
          log.warn({ err: (err as Error).message, tenant: query.tenant }, "export failed mid-stream");
          controller.error(err);
        }
      },
      async cancel() {
        cancelled = true;
        abort.abort(); // a COPY is cancelled at once; one waiting for rows stops waiting
        try {
          // A chunk in flight first: the cursor can be closed only between chunks.
          await pending?.catch(() => {});
          await it.return(undefined);
        } finally {
          // Only now: the export's connection is back in its client. A slot given back earlier let
          // the next export take the connection a cancel needs (all of them held, none cancelled).
          release();
        }
      },
    },
    { highWaterMark: 0 },
  );
}

const route = routesOf<ExportDeps>();

export const exportRoutes = [
  route({
    method: "get",
    path: "/api/v1/readings/export",
    tag: "devices",
    summary: "Export readings (CSV or NDJSON, streamed)",
    description:
      "The tenant's readings in [from, to), ordered by device, time and event id, streamed from the database with flat memory whatever the range. " +
      "CSV is long format `ts,device_id,event_id,lat,lon,metric,value` (one line per metric); NDJSON is the ingest record shape, so an export can be re-ingested. " +
      "Gzip-compressed when the request has `Accept-Encoding: gzip`. Errors: 400 invalid_time, invalid_range, invalid_device, invalid_metric, invalid_format, invalid_query; 429 export_busy.",
    auth: "tenant",
    query: exportQuery,
    responses: {
      200: { description: "the readings", contentType: "text/csv" },
      429: { description: "too many exports running in this process", headers: { "Retry-After": "seconds" } },
    },
    handler: function exportReadings(c, deps) {
      const { query, format } = parseExport(c, c.get("tenant"));
      if (!deps.exports.slots.take())
        throw new HttpError(429, "export_busy", "too many exports are running; retry later", undefined, {
          "Retry-After": "5",
        });
      let body: ReadableStream<Uint8Array> = exportStream(deps, query, format);
      const headers: Record<string, string> = {
        "Content-Type": CONTENT_TYPES[format],
        "Content-Disposition": `attachment; filename="readings.${format}"`,
        "Cache-Control": "no-store",
        Vary: "Accept-Encoding",
      };
      if (wantsGzip(c.req.header("accept-encoding"))) {
        body = body.pipeThrough(new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>);
        headers["Content-Encoding"] = "gzip";
      }
      return new Response(body, { status: 200, headers });
    },
  }),
];
