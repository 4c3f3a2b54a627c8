/**
 * The OsmAnd source (OsmAnd's online tracking, Traccar Client): `/osmand/<key>` or
 * `/osmand?key=<key>` on the HTTP port, and every path of TELEMETRY_OSMAND_PORT (Traccar's 5055,
 * where the key is the first path segment or `?key=`). Any method. The reading comes from the
 * query, else from a form body, else from Traccar Client 9's JSON body; core/trackers decodes it
 * and the admission step does the rest. The answer is Traccar's: 200 with an empty body once the
 * reading is stored (JetStream ack) or was stored before; otherwise a status with one line of text
 * (docs/protocols/osmand.md lists them). The key is never logged (http/app.ts redacts the path).
 */
import type { Context, Hono } from "hono";
import { z } from "zod";
import { decodeOsmAnd, osmandParameters } from "../../core/trackers/osmand.ts";
import { decodeTraccarJson } from "../../core/trackers/traccar-json.ts";
import type { DecodeResult } from "../../core/trackers/fields.ts";
import type { KeyResolver, TenantEnv } from "../../http/auth.ts";
import { readBody } from "../../http/body.ts";
import { HttpError } from "../../http/errors.ts";
import { mountGroup, ok, retryAfter, routesOf } from "../../http/route.ts";
import {
  admitTracker,
  KEY_PARAMETERS,
  refused,
  trackerAuth,
  type TrackerDeps,
  type TrackerOutcome,
  urlKey,
} from "./tracker.ts";

/** Paths whose segments after the prefix are a key: the request log shows `/osmand/[redacted]`. */
export const OSMAND_SECRET_PATHS = ["/osmand/"];

const text = (description: string) => ({ description, contentType: "text/plain" });

const RESPONSES = {
  200: ok("the reading is stored (or was already): empty body, as Traccar answers"),
  400: text(
    "the reading is invalid (missing id, lat 91, bad timestamp, a parameter that is not a number, bad JSON): one line naming the problem",
  ),
  401: text("unauthenticated: no key in the URL, or an unknown or revoked key"),
  403: text("tenant_suspended, or unknown_device / device_limit (the tenant's device policy refused the device)"),
  413: text("body_too_large"),
  429: { ...text("rate_limited, auth_rate_limited"), headers: retryAfter },
  503: {
    ...text("broker_unavailable, auth_unavailable, auth_busy, devices_unavailable: nothing stored, retry"),
    headers: retryAfter,
  },
};

function answer(c: Context, outcome: TrackerOutcome): Response {
  if (outcome.ok) return c.body(null, 200);
  return c.text(`${outcome.code}: ${outcome.message}\n`, outcome.status, outcome.headers);
}

/** With a device key the request may leave the device id out: the key names it. */
function withDevice(params: Map<string, string>, device: string | null): Map<string, string> {
  if (device !== null && !params.get("id") && !params.get("deviceid")) params.set("id", device);
  return params;
}

/** Reads the reading from the query, a form body or a Traccar Client 9 JSON body. */
async function decodeRequest(
  c: Context,
  maxBodyBytes: number,
  receivedAt: number,
  device: string | null,
): Promise<DecodeResult> {
  const url = new URL(c.req.url);
  for (const name of KEY_PARAMETERS) url.searchParams.delete(name);
  const query = url.searchParams.toString();
  if (query !== "" || c.req.method === "GET" || c.req.method === "HEAD")
    return decodeOsmAnd(withDevice(osmandParameters(query), device), receivedAt);
  const body = await readBody(c.req.raw, maxBodyBytes);
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "application/json" || (type === "" && body.trimStart().startsWith("{"))) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return { ok: false, errors: [{ path: "", message: "the body is not valid JSON" }] };
    }
    if (device !== null && parsed !== null && typeof parsed === "object" && !("device_id" in parsed))
      (parsed as { device_id?: string }).device_id = device;
    return decodeTraccarJson(parsed);
  }
  return decodeOsmAnd(withDevice(osmandParameters("", body), device), receivedAt);
}

async function handleOsmAnd(c: Context<TenantEnv>, deps: TrackerDeps): Promise<Response> {
  const receivedAt = (deps.options.now ?? Date.now)();
  try {
    const device = c.get("device");
    const decoded = await decodeRequest(c, deps.options.maxBodyBytes, receivedAt, device);
    return answer(c, await admitTracker(deps, "osmand", c.get("tenantSettings"), decoded, receivedAt, device));
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    return answer(c, refused(err));
  }
}

const route = routesOf<TrackerDeps>();
const DESCRIPTION =
  "OsmAnd protocol (OsmAnd online tracking, Traccar Client): the tenant key is in the URL, never in a header. Any method; the reading is read from the query (`id`, `lat`, `lon`, `timestamp`, `speed` in knots, `bearing`, `altitude`, `accuracy`, `hdop`, `batt`, …), else from an `application/x-www-form-urlencoded` body, else from Traccar Client 9's JSON body. 200 with an empty body once stored; a request sent again is stored once. See docs/protocols/osmand.md.";
const query = z.object({
  id: z.string().optional().meta({ description: "device id (or deviceid)" }),
  lat: z.string().optional(),
  lon: z.string().optional(),
  timestamp: z.string().optional().meta({ description: "epoch seconds, epoch milliseconds or ISO 8601" }),
});

const declare = (method: "get" | "post", path: "/osmand/:key" | "/osmand", summary: string) =>
  route({
    method,
    path,
    tag: "ingest",
    summary,
    description: DESCRIPTION,
    auth: "tenant",
    ...(path === "/osmand/:key"
      ? { params: { key: "the tenant key" } }
      : { query: query.extend({ key: z.string().meta({ description: "the tenant key" }) }) }),
    ...(method === "post"
      ? {
          body: {
            "application/x-www-form-urlencoded": z.string().meta({ description: "the parameters, as in the query" }),
            "application/json": z.record(z.string(), z.unknown()).meta({ description: "Traccar Client 9's body" }),
          },
        }
      : path === "/osmand/:key"
        ? { query }
        : {}),
    responses: RESPONSES,
    handler: handleOsmAnd,
  });

export const osmandRoutes = [
  declare("get", "/osmand/:key", "OsmAnd / Traccar Client reading (key in the path)"),
  declare("post", "/osmand/:key", "OsmAnd / Traccar Client reading (key in the path)"),
  declare("get", "/osmand", "OsmAnd / Traccar Client reading (key in ?key=)"),
  declare("post", "/osmand", "OsmAnd / Traccar Client reading (key in ?key=)"),
];

/** The OsmAnd routes on the HTTP port: the declared ones, and any other method on the same paths. */
export function osmandRouter(resolve: KeyResolver, deps: TrackerDeps): Hono {
  const guard = trackerAuth(resolve, urlKey, answer);
  const app = mountGroup("tenant", guard, osmandRoutes, deps);
  for (const path of ["/osmand/:key", "/osmand"])
    app.all(path, guard, (c) => handleOsmAnd(c as unknown as Context<TenantEnv>, deps));
  return app;
}

/** The dedicated port (TELEMETRY_OSMAND_PORT): `/<key>` or `/?key=<key>`, any method. */
export function osmandPortRouter(resolve: KeyResolver, deps: TrackerDeps): Hono {
  const guard = trackerAuth(resolve, urlKey, answer);
  const app = mountGroup("tenant", guard, [], deps);
  for (const path of ["/:key", "/"])
    app.all(path, guard, (c) => handleOsmAnd(c as unknown as Context<TenantEnv>, deps));
  return app;
}
