/**
 * The OwnTracks source (the app's HTTP mode): `POST /owntracks` with HTTP Basic auth (the app's
 * username and password; the password is the tenant key), or `POST /owntracks/<key>` for a client
 * without auth settings. One JSON message per request; a `location` is a reading, every other
 * `_type` is answered like a stored one and nothing is stored. The answer is the JSON array the
 * app expects (`[]`); errors are the JSON error body with a specific code. Identity: `X-Limit-U`
 * (else `?u=`, else the Basic username) and `X-Limit-D` (else `?d=`) (docs/protocols/owntracks.md).
 */
import type { Context, Hono } from "hono";
import { z } from "zod";
import { decodeOwnTracks, MAX_OWNTRACKS_BODY } from "../../core/trackers/owntracks.ts";
import type { DecodeResult } from "../../core/trackers/fields.ts";
import type { KeyResolver, TenantEnv } from "../../http/auth.ts";
import { readBody } from "../../http/body.ts";
import { errorBody, HttpError } from "../../http/errors.ts";
import { mountGroup, ok, retryAfter, routesOf } from "../../http/route.ts";
import { err } from "../../openapi/views.ts";
import { admitTracker, refused, trackerAuth, type TrackerDeps, type TrackerOutcome, urlKey } from "./tracker.ts";

export const OWNTRACKS_SECRET_PATHS = ["/owntracks/"];

const REALM = { "WWW-Authenticate": 'Basic realm="telemetry", charset="UTF-8"' };

/** `Authorization: Basic base64(user:password)`; null when absent or not Basic. */
export function basicCredentials(header: string | undefined): { user: string; password: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!m) return null;
  const text = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = text.indexOf(":");
  return colon < 0 ? null : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The key: the path's, else the Basic auth password, else `?key=`. */
function ownTracksKey(c: Context): string {
  if (c.req.param("key")) return c.req.param("key")!;
  const basic = basicCredentials(c.req.header("authorization"));
  if (basic?.password) return basic.password;
  try {
    return urlKey(c);
  } catch {
    throw new HttpError(
      401,
      "unauthenticated",
      "missing key: set the app's authentication (password = the tenant key) or use /owntracks/<key>",
      undefined,
      REALM,
    );
  }
}

function answer(c: Context, outcome: TrackerOutcome): Response {
  if (outcome.ok) return c.json([], 200);
  const headers = { ...outcome.headers, ...(outcome.status === 401 ? REALM : {}) };
  return c.json(errorBody(outcome.code, outcome.message), outcome.status, headers);
}

const isEncrypted = (v: unknown) =>
  typeof v === "object" && v !== null && (v as Record<string, unknown>)._type === "encrypted";

async function decodeRequest(
  c: Context,
  maxBodyBytes: number,
): Promise<DecodeResult | Extract<TrackerOutcome, { ok: false }>> {
  const text = await readBody(c.req.raw, Math.min(maxBodyBytes, MAX_OWNTRACKS_BODY));
  if (text.trim() === "") return { ok: true, records: [] }; // the app sends one when a friend is deleted
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, status: 400, code: "invalid_json", message: "the body is not valid JSON" };
  }
  if (isEncrypted(body))
    return {
      ok: false,
      status: 400,
      code: "encrypted_payload",
      message: "encrypted payloads are not supported: clear the encryption key in the app's settings",
    };
  const user =
    c.req.header("x-limit-u") || c.req.query("u") || basicCredentials(c.req.header("authorization"))?.user || null;
  return decodeOwnTracks(body, { user, device: c.req.header("x-limit-d") || c.req.query("d") || null });
}

async function handleOwnTracks(c: Context<TenantEnv>, deps: TrackerDeps): Promise<Response> {
  const receivedAt = (deps.options.now ?? Date.now)();
  try {
    const decoded = await decodeRequest(c, deps.options.maxBodyBytes);
    if ("code" in decoded) return answer(c, decoded);
    // A device key names the device: the app's user/device identity (always present) gives way.
    const device = c.get("device");
    const own =
      device !== null && decoded.ok
        ? { ...decoded, records: decoded.records.map((r) => ({ ...r, device_id: device })) }
        : decoded;
    return answer(c, await admitTracker(deps, "owntracks", c.get("tenantSettings"), own, receivedAt, device));
  } catch (e) {
    if (!(e instanceof HttpError)) throw e;
    return answer(c, refused(e));
  }
}

const route = routesOf<TrackerDeps>();
const base = {
  method: "post",
  tag: "ingest",
  description:
    'OwnTracks HTTP mode: one JSON message per request. `_type: "location"` is stored as a reading; other types are answered `[]` and not stored. Device id: `X-Limit-U:X-Limit-D` (the app\'s username and device id), else the tracker id `tid`. See docs/protocols/owntracks.md.',
  auth: "tenant",
  body: { "application/json": z.record(z.string(), z.unknown()).meta({ description: "an OwnTracks message" }) },
  responses: {
    200: ok("stored, or nothing to store: an empty JSON array", z.array(z.unknown())),
    400: err("invalid_json, invalid_record (names the field: lat, lon, tst, tid, …), encrypted_payload, invalid_utf8"),
    401: err("unauthenticated: no key (Basic auth password or path) or an unknown or revoked key"),
    403: err("tenant_suspended, unknown_device, device_limit"),
    405: err("method_not_allowed: only POST"),
    413: err("body_too_large"),
    429: { ...err("rate_limited, auth_rate_limited"), headers: retryAfter },
    503: {
      ...err("broker_unavailable, auth_unavailable, auth_busy, devices_unavailable: nothing stored, retry"),
      headers: retryAfter,
    },
  },
  handler: handleOwnTracks,
} as const;

export const owntracksRoutes = [
  route({ ...base, path: "/owntracks", summary: "OwnTracks HTTP mode (key as the Basic auth password)" }),
  route({
    ...base,
    path: "/owntracks/:key",
    summary: "OwnTracks HTTP mode (key in the path)",
    params: { key: "the tenant key" },
  }),
];

/** POST only; another method gets 405 before any key check (it could never succeed). */
export function owntracksRouter(resolve: KeyResolver, deps: TrackerDeps): Hono {
  const app = mountGroup("tenant", trackerAuth(resolve, ownTracksKey, answer), owntracksRoutes, deps);
  for (const path of ["/owntracks", "/owntracks/:key"])
    app.all(path, (c) =>
      c.json(errorBody("method_not_allowed", `${c.req.method} is not supported: OwnTracks sends POST`), 405, {
        Allow: "POST",
      }),
    );
  return app;
}
