/**
 * What the tracker sources (OsmAnd / Traccar Client, OwnTracks) share: the key in the URL, one
 * admission of the records a decoder found, and the outcome in a form each protocol maps to its
 * own answer. Trackers retry anything but success forever, so a device the tenant's policy refuses
 * is also recorded in the quarantine (source `osmand` / `owntracks`), at most once per device per
 * QUARANTINE_INTERVAL_MS in each process, instead of once per retry.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { RecordInput } from "../../core/record.ts";
import type { TenantSettings } from "../../core/tenant.ts";
import type { DecodeResult } from "../../core/trackers/fields.ts";
import type { Sql } from "../../db/client.ts";
import { insertQuarantine } from "../../db/quarantine.ts";
import { type KeyExtractor, type KeyResolver, requireTenant, type TenantEnv } from "../../http/auth.ts";
import { HttpError } from "../../http/errors.ts";
import { logger } from "../../lib/log.ts";
import { admit } from "../admit.ts";
import type { IngestDeps } from "./http-json.ts";

const log = logger("ingest");

export type TrackerProtocol = "osmand" | "owntracks";

export interface TrackerDeps extends IngestDeps {
  /** For the quarantine rows of refused devices; null: not recorded (tests without a database). */
  sql: Sql | null;
  refusals: RefusalLog;
}

/** What a tracker request came to: stored (or nothing to store), or refused with a status. */
export type TrackerOutcome =
  | { ok: true; stored: number }
  | {
      ok: false;
      status: 400 | 401 | 403 | 413 | 415 | 429 | 503;
      code: string;
      message: string;
      headers?: Record<string, string>;
    };

/** Query parameters that carry the key: never passed to a decoder, never stored. */
export const KEY_PARAMETERS = ["key", "token"] as const;

/** The key from the path (`/osmand/<key>`) or the query (`?key=` or `?token=`); 401 without one. */
export function urlKey(c: Context): string {
  const fromPath = c.req.param("key");
  if (fromPath) return fromPath;
  const url = new URL(c.req.url);
  for (const name of KEY_PARAMETERS) {
    const v = url.searchParams.get(name);
    if (v) return v;
  }
  throw new HttpError(401, "unauthenticated", "missing key: put the tenant key in the URL (/<key> or ?key=<key>)");
}

export const QUARANTINE_INTERVAL_MS = 10 * 60_000;
/** Devices remembered at most; when full, the oldest entry goes (a flood of ids costs a bounded map). */
const MAX_REMEMBERED = 10_000;

/** Which refused devices were recorded recently: one quarantine row per device per interval. */
export class RefusalLog {
  private readonly last = new Map<string, number>();
  constructor(
    private readonly intervalMs = QUARANTINE_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when this device's refusal should be recorded now (and remembers that it was). */
  take(key: string): boolean {
    const now = this.now();
    const at = this.last.get(key);
    if (at !== undefined && now - at < this.intervalMs) return false;
    this.last.delete(key);
    if (this.last.size >= MAX_REMEMBERED) this.last.delete(this.last.keys().next().value!);
    this.last.set(key, now);
    return true;
  }
}

/** An HttpError (from the key check, the body reader or the admission) as an outcome. */
export function refused(err: HttpError): TrackerOutcome {
  return { ok: false, status: err.status as 403, code: err.code, message: err.message, headers: err.headers };
}

/**
 * The tenant key check with its refusals answered by `answer` (a protocol's own error form)
 * instead of the JSON error body. The handler's own errors are not caught here.
 */
export function trackerAuth(
  resolve: KeyResolver,
  extract: KeyExtractor,
  answer: (c: Context, outcome: TrackerOutcome) => Response,
): MiddlewareHandler<TenantEnv> {
  const check = requireTenant(resolve, extract);
  return async function trackerAuth(c, next) {
    try {
      return await check(c, next);
    } catch (err) {
      if (err instanceof HttpError) return answer(c, refused(err));
      throw err;
    }
  };
}

/** One line naming the first problem: `lat: must be between -90 and 90`. */
export function problemText(errors: ReadonlyArray<{ path: string; message: string }>): string {
  const e = errors[0];
  if (!e) return "invalid record";
  return e.path ? `${e.path}: ${e.message}` : e.message;
}

function recordRefusal(
  deps: TrackerDeps,
  protocol: TrackerProtocol,
  tenant: TenantSettings,
  rec: RecordInput,
  err: HttpError,
) {
  const deviceId = String(rec.device_id);
  if (!deps.sql || !deps.refusals.take(`${protocol}\u0000${tenant.id}\u0000${deviceId}`)) return;
  insertQuarantine(deps.sql, {
    source: protocol,
    subject: `${tenant.id}/${deviceId}`,
    streamSeq: null,
    reason: `${err.code}: ${err.message}`,
    payload: JSON.stringify(rec),
  }).catch((e) => log.warn({ err: (e as Error).message, protocol }, "could not record a refused tracker device"));
}

/** Admits what a decoder found; a decoding or validation error is a 400 naming the problem. */
export async function admitTracker(
  deps: TrackerDeps,
  protocol: TrackerProtocol,
  tenant: TenantSettings,
  decoded: DecodeResult,
  receivedAt: number,
  device: string | null,
): Promise<TrackerOutcome> {
  if (!decoded.ok) return { ok: false, status: 400, code: "invalid_record", message: problemText(decoded.errors) };
  if (decoded.records.length === 0) return { ok: true, stored: 0 };
  const items = decoded.records.map((value, index) => ({ index, value }));
  try {
    const { status, body } = await admit(deps, tenant, items, receivedAt, device);
    const rejected = body.results.find((r) => r.status === "rejected");
    if (status === 422 && rejected && "errors" in rejected)
      return { ok: false, status: 400, code: "invalid_record", message: problemText(rejected.errors) };
    return { ok: true, stored: body.accepted + body.duplicate + body.dead_lettered };
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    if (err.code === "unknown_device" || err.code === "device_limit")
      recordRefusal(deps, protocol, tenant, decoded.records[0]!, err);
    return refused(err);
  }
}
