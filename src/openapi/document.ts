/**
 * Builds the OpenAPI 3.1 document from the route declarations (http/route.ts), whose request and
 * response parts are the zod schemas the handlers use, converted with zod's own z.toJSONSchema (JSON Schema 2020-12,
 * which is what OpenAPI 3.1 uses). Pure: no I/O.
 */
import { z } from "zod";
import type { Operation, ResponseSpec } from "../http/route.ts";

export interface DocumentInfo {
  title: string;
  version: string;
  description: string;
}

type Json = Record<string, any>;

/** /api/v1/devices/:id -> /api/v1/devices/{id} */
export const openApiPath = (honoPath: string) => honoPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

export function buildDocument(ops: readonly Operation[], info: DocumentInfo, errorSchema: z.ZodType): Json {
  const components: Record<string, Json> = {};

  /** JSON Schema of a zod schema; named sub-schemas (meta id) go to components. */
  const toSchema = (schema: z.ZodType, io: "input" | "output"): Json => {
    const json = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-2020-12" }) as Json;
    const defs: Record<string, Json> = json.$defs ?? {};
    const rename = new Map<string, string>();
    for (const [id, def] of Object.entries(defs)) {
      let name = id;
      const existing = components[name];
      if (existing && JSON.stringify(existing) !== JSON.stringify(def))
        name = `${id}${io === "input" ? "Input" : "Output"}`;
      components[name] = def;
      rename.set(id, name);
    }
    delete json.$defs;
    delete json.$schema;
    const fixRefs = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(fixRefs);
      if (!node || typeof node !== "object") return node;
      const out: Json = {};
      for (const [k, v] of Object.entries(node)) {
        out[k] =
          k === "$ref" && typeof v === "string" && v.startsWith("#/$defs/")
            ? `#/components/schemas/${rename.get(v.slice(8)) ?? v.slice(8)}`
            : fixRefs(v);
      }
      return out;
    };
    for (const name of rename.values()) components[name] = fixRefs(components[name]) as Json;
    return fixRefs(json) as Json;
  };

  const jsonContent = (schema: z.ZodType, io: "input" | "output") => ({
    "application/json": { schema: toSchema(schema, io) },
  });

  const paths: Record<string, Json> = {};
  for (const op of ops) {
    const parameters: Json[] = [];
    for (const [, name] of op.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
      parameters.push({
        name,
        in: "path",
        required: true,
        schema: { type: "string" },
        ...(op.params?.[name!] ? { description: op.params[name!] } : {}),
      });
    }
    if (op.query) {
      const q = toSchema(op.query, "input");
      const required = new Set<string>(q.required ?? []);
      for (const [name, schema] of Object.entries<Json>(q.properties ?? {})) {
        const { description, ...rest } = schema;
        parameters.push({
          name,
          in: "query",
          required: required.has(name),
          schema: rest,
          ...(description ? { description } : {}),
        });
      }
    }

    const responses: Json = {};
    const all: Record<number, ResponseSpec> = { ...standardErrors(op), ...op.responses };
    for (const [status, r] of Object.entries(all)) {
      const content = r.schema
        ? jsonContent(r.schema, "output")
        : r.contentType
          ? { [r.contentType]: { schema: { type: "string" } } }
          : undefined;
      responses[status] = {
        description: r.description,
        ...(content ? { content } : {}),
        ...(r.headers
          ? {
              headers: Object.fromEntries(
                Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: "string" } }]),
              ),
            }
          : {}),
      };
    }

    let requestBody: Json | undefined;
    if (op.body) {
      const bodies: Record<string, z.ZodType> =
        op.body instanceof z.ZodType ? { "application/json": op.body } : op.body;
      requestBody = {
        required: true,
        content: Object.fromEntries(
          Object.entries(bodies).map(([type, s]) => [type, { schema: toSchema(s, "input") }]),
        ),
      };
    }

    const path = openApiPath(op.path);
    paths[path] ??= {};
    paths[path][op.method] = {
      operationId: operationId(op),
      tags: [op.tag],
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      ...(op.auth === "none"
        ? { security: [] }
        : { security: [{ [op.auth === "admin" ? "adminToken" : "tenantKey"]: [] }] }),
      ...(parameters.length ? { parameters } : {}),
      ...(requestBody ? { requestBody } : {}),
      responses,
    };
  }

  return {
    openapi: "3.1.0",
    info,
    tags: [...new Set(ops.map((o) => o.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        tenantKey: {
          type: "http",
          scheme: "bearer",
          description: "A tenant's API key (tk_...). The key decides the tenant.",
        },
        adminToken: {
          type: "http",
          scheme: "bearer",
          description: "TELEMETRY_ADMIN_TOKEN; the admin API is off (404) without it.",
        },
      },
    },
  };

  function standardErrors(op: Operation): Record<number, ResponseSpec> {
    const e = (description: string): ResponseSpec => ({ description, schema: errorSchema });
    const out: Record<number, ResponseSpec> = {};
    if (op.auth !== "none") out[401] = e("missing, unknown or revoked key (unauthenticated)");
    if (op.auth === "tenant") {
      out[403] = e("the tenant is suspended (tenant_suspended)");
      out[429] = e(
        "too many failed key checks from this address: its keys not in the key cache wait Retry-After seconds (auth_rate_limited)",
      );
      out[503] = e(
        "the key store is unreachable for a key not seen recently (auth_unavailable), too many unseen keys are being checked (auth_busy), or the server is shutting down",
      );
    }
    if (op.query) out[400] = e("invalid query parameters (invalid_query, with details per parameter)");
    if (op.body) {
      out[400] = e(
        "the body is not valid JSON (invalid_json), not valid UTF-8 (invalid_utf8), or a corrupt gzip/deflate stream (invalid_encoding)",
      );
      out[413] = e("the body is over TELEMETRY_MAX_BODY, as sent or once decoded (body_too_large)");
      out[415] = e(
        "a Content-Encoding other than gzip, deflate or identity (unsupported_encoding; the message and Accept-Encoding name the supported ones)",
      );
      out[422] = e("the body is invalid (invalid_body, with details per field)");
    }
    if (op.path.includes(":")) out[404] = e("no such resource (another tenant's resources are not found either)");
    return out;
  }
}

function operationId(op: Operation): string {
  const words = op.path
    .replace(/^\/(api|admin)\/v1\//, "/")
    .split("/")
    .filter(Boolean)
    .map((w) => (w.startsWith(":") ? `by ${w.slice(1)}` : w));
  if (words.length === 0) words.push("root");
  else if (op.path.endsWith("/")) words.push("index");
  return [op.method, ...words]
    .join(" ")
    .replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ? ch.toUpperCase() : ""));
}
