/**
 * The HTTP JSON/NDJSON source: POST /api/v1/telemetry. It decodes and the admission step
 * (ingest/admit) does the rest. Checks here, in order: key (401/403/503, by the tenant
 * middleware), content type and encoding (415), body size before and after decoding (413),
 * decoding and UTF-8 (400), parsing (400/413); then admit: each record's validity, the tenant's
 * device policy, the rate limits, publishing.
 */
import { z } from "zod";
import { recordSchema } from "../../core/record.ts";
import { readBody } from "../../http/body.ts";
import { ok, retryAfter as retryAfterDoc, routesOf } from "../../http/route.ts";
import { err, ingestResultSchema } from "../../openapi/views.ts";
import { admit, type AdmitDeps, type AdmitOptions } from "../admit.ts";
import { bodyKind, parseBody } from "../parse.ts";

export interface IngestDeps extends AdmitDeps {
  options: IngestOptions;
}

export interface IngestOptions extends AdmitOptions {
  maxBodyBytes: number;
  /** Clock, injectable for tests. */
  now?: () => number;
}

const route = routesOf<IngestDeps>();
const record = recordSchema.meta({ id: "TelemetryRecord", description: "One reading. Unknown fields are rejected." });

export const ingestRoutes = [
  route({
    method: "post",
    path: "/api/v1/telemetry",
    tag: "ingest",
    summary: "Send readings (one record, an array, or NDJSON)",
    description:
      "The key decides the tenant. 202 once JetStream has acknowledged at least one record; each record gets a result in request order. The body may be sent with Content-Encoding gzip or deflate; TELEMETRY_MAX_BODY holds before and after decoding. Checks in order: key, content type and encoding, body size, decoding, parsing, each record, device policy, rate limits, publish.",
    auth: "tenant",
    body: {
      "application/json": z.union([record, z.array(record)]),
      "application/x-ndjson": z
        .string()
        .meta({ description: "one record per line; a bad line rejects only that record" }),
    },
    responses: {
      202: ok("at least one record accepted", ingestResultSchema),
      422: ok("every record was invalid or refused (same body as 202)", ingestResultSchema),
      403: { ...err("tenant_suspended, or unknown_device / device_limit for every record") },
      400: err(
        "invalid_json, empty_body, invalid_body (not a record or an array), invalid_utf8, invalid_encoding (corrupt gzip/deflate)",
      ),
      413: err("body_too_large (as sent or once decoded) or too_many_records"),
      415: {
        ...err(
          "unsupported_media_type (Content-Type) or unsupported_encoding (Content-Encoding other than gzip, deflate, identity)",
        ),
        headers: { "Accept-Encoding": "the supported content codings (on unsupported_encoding)" },
      },
      429: {
        ...err("rate_limited, or auth_rate_limited (too many failed key checks from this address)"),
        headers: retryAfterDoc,
      },
      503: {
        ...err(
          "broker_unavailable (nothing stored: retry the same records), auth_unavailable, auth_busy, devices_unavailable",
        ),
        headers: retryAfterDoc,
      },
    },
    handler: async function ingestTelemetry(c, deps) {
      const opts = deps.options;
      const now = opts.now ?? Date.now;
      const tenant = c.get("tenantSettings");
      const kind = bodyKind(c.req.header("content-type"));
      const items = parseBody(await readBody(c.req.raw, opts.maxBodyBytes), kind, tenant.limits.maxRecordsPerRequest);
      const { status, body } = await admit(deps, tenant, items, now(), c.get("device"));
      return c.json(body, status);
    },
  }),
];
