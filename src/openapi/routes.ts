/** GET /openapi.json: the document, built once per process from the operations' zod schemas. */
import { Hono } from "hono";
import pkg from "../../package.json" with { type: "json" };
import { buildDocument } from "./document.ts";
import { OPERATIONS } from "./operations.ts";
import { errorSchema } from "./views.ts";

let cached: string | null = null;

export function openApiDocument(): Record<string, any> {
  return buildDocument(
    OPERATIONS,
    {
      title: "telemetry",
      version: pkg.version,
      description:
        "Self-hosted telemetry server: devices POST readings, the server stores them durably (NATS JetStream, then PostgreSQL/TimescaleDB), evaluates alert rules and notifies channels. " +
        "Tenant routes take `Authorization: Bearer <tenant API key>`; the admin API takes the admin token. Errors are `{\"error\":{\"code\",\"message\",\"details\"?}}`.",
    },
    errorSchema,
  );
}

export function openApiRoutes() {
  const app = new Hono();
  app.get("/openapi.json", function openApi(c) {
    cached ??= JSON.stringify(openApiDocument());
    return c.body(cached, 200, { "Content-Type": "application/json; charset=utf-8", "Access-Control-Allow-Origin": "*" });
  });
  return app;
}
