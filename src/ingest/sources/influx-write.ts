/**
 * One line-protocol write, whichever InfluxDB API it came through: precision (400 when unknown),
 * the body (gzip, bounded: 413), the parser (per-line errors), the tenant's mapping, the shared
 * admission (ingest/admit), then InfluxDB's answer:
 *   204  every line stored (or already stored: a re-sent batch has the same event ids);
 *   400  some lines bad (syntax, mapping, a record normalizeRecord refuses, a device the policy
 *        refuses): the others ARE stored (partial write); the body names the first bad lines;
 *   429  a record over its device's rate limit (Retry-After; the stored ones are duplicates on
 *        the retry), or admit's 429 / 403 / 503 for the whole request.
 * A transient condition is never a 4xx other than 429, so Telegraf keeps the batch and retries.
 */
import type { Context } from "hono";
import { mapPoints, type LineMapping } from "../../core/line-protocol-map.ts";
import { parseLineProtocol } from "../../core/line-protocol.ts";
import { parsePrecision, type PrecisionDialect } from "../../core/line-protocol-time.ts";
import type { TenantSettings } from "../../core/tenant.ts";
import type { TenantEnv } from "../../http/auth.ts";
import { readBody } from "../../http/body.ts";
import { HttpError } from "../../http/errors.ts";
import { admit, type Admission } from "../admit.ts";
import type { IngestDeps, IngestOptions } from "./http-json.ts";
import { influxError, type LineFault } from "./influx-errors.ts";

export interface InfluxOptions extends IngestOptions {
  /** The server's mapping settings (TELEMETRY_LP_*); a tenant's own ones override them. */
  lineProtocol: LineMapping;
}

export interface InfluxDeps extends IngestDeps {
  options: InfluxOptions;
}

/** The tenant's own mapping settings over the server's (TELEMETRY_LP_*). */
export function mappingFor(server: LineMapping, tenant: TenantSettings): LineMapping {
  const own = tenant.lineProtocol;
  if (!own) return server;
  return {
    deviceTags: own.deviceTags ?? server.deviceTags,
    bareMeasurements: own.bareMeasurements ?? server.bareMeasurements,
    latFields: own.latFields ?? server.latFields,
    lonFields: own.lonFields ?? server.lonFields,
    seriesTags: own.seriesTags ?? server.seriesTags,
  };
}

/** How many bad lines an error message names (the v2 `lines` / v3 `data` list has up to 100). */
const NAMED = 5;

function describe(faults: LineFault[], total: number, bad: number): string {
  const stored = total - bad;
  const head =
    stored > 0
      ? `partial write: ${stored} of ${total} lines stored, ${bad} rejected`
      : `no line stored: all ${total} rejected`;
  const named = faults.slice(0, NAMED).map((f) => `line ${f.line}: ${f.message}`);
  return `${head}; ${named.join("; ")}${bad > NAMED ? `; and ${bad - NAMED} more` : ""}`;
}

const RETRY_IN = /retry in (\d+) s/;

export async function writeLines(
  c: Context<TenantEnv>,
  deps: InfluxDeps,
  dialect: PrecisionDialect,
): Promise<Response> {
  const opts = deps.options;
  const now = (opts.now ?? Date.now)();
  const tenant = c.get("tenantSettings");
  const precision = parsePrecision(c.req.query("precision"), dialect);
  if (!precision.ok) throw new HttpError(400, "invalid_precision", precision.message);
  const text = await readBody(c.req.raw, opts.maxBodyBytes);
  const parsed = parseLineProtocol(text, { precision: precision.precision, receivedAtMs: now });
  const total = parsed.points.length + parsed.errorCount;
  if (total === 0) throw new HttpError(400, "empty_body", "writing requires points: the body has no line");
  const max = tenant.limits.maxRecordsPerRequest;
  if (total > max)
    throw new HttpError(
      413,
      "too_many_records",
      `the body has ${total} lines; at most ${max} per request: split the batch`,
    );
  const mapped = mapPoints(parsed.points, mappingFor(opts.lineProtocol, tenant));
  const faults: LineFault[] = [...parsed.errors, ...mapped.errors];
  let bad = parsed.errorCount + mapped.errors.length;
  let admission: Admission | null = null;
  if (mapped.records.length > 0) {
    const items = mapped.records.map((r, index) => ({ index, value: r.record, identity: r.identity }));
    admission = await admit(deps, tenant, items, now, c.get("device"));
  }
  let retryAfter = 0;
  for (const r of admission?.body.results ?? []) {
    const line = mapped.records[r.index]!.line;
    if (r.status === "rejected") {
      const limited = r.errors.find((e) => e.code === "rate_limited");
      if (limited) retryAfter = Math.max(retryAfter, Number(RETRY_IN.exec(limited.message)?.[1] ?? 1));
      faults.push({ line, message: r.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; ") });
      bad++;
    } else if (r.status === "dead_lettered") {
      faults.push({ line, message: `not stored (dead-lettered): ${r.error}` });
      bad++;
    }
  }
  if (retryAfter > 0) {
    const message =
      "some records are over their device's rate limit; retry the same batch (stored lines are not stored twice)";
    return influxError(c, 429, message, { headers: { "Retry-After": String(Math.max(1, retryAfter)) } });
  }
  if (bad === 0) return c.body(null, 204);
  faults.sort((a, b) => a.line - b.line);
  return influxError(c, 400, describe(faults, total, bad), { faults: faults.slice(0, 100) });
}
