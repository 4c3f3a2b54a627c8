/**
 * The HTTP surface in one place: every route the server has, in the order the API description
 * lists them, and the OpenAPI document derived from those same declarations (GET /openapi.json).
 * Which groups a process mounts, each behind its auth, is decided in start.ts.
 */
import pkg from "../../package.json" with { type: "json" };
import { provisionRoutes } from "../api/device-keys.ts";
import { apiRoutes } from "../api/routes.ts";
import { streamRoutes } from "../api/stream.ts";
import { serviceRoutes } from "../http/app.ts";
import { page, routesOf, type Route } from "../http/route.ts";
import { ingestRoutes } from "../ingest/sources/http-json.ts";
import { osmandRoutes } from "../ingest/sources/osmand.ts";
import { owntracksRoutes } from "../ingest/sources/owntracks.ts";
import { influxPublicRoutes, influxRoutes } from "../ingest/sources/influx.ts";
import { channelRoutes } from "../notify/routes.ts";
import { messageRoutes } from "../notify/message-routes.ts";
import { buildDocument } from "../openapi/document.ts";
import { errorSchema } from "../openapi/views.ts";
import { adminRoutes } from "../tenants/routes.ts";
import { dashboardApiRoutes } from "../ui/api.ts";
import { type UiDeps, uiRoutes } from "../ui/routes.ts";

let cached: string | null = null;

const openApiRoute = routesOf<unknown>()({
  method: "get",
  path: "/openapi.json",
  tag: "service",
  summary: "This description (OpenAPI 3.1)",
  auth: "none",
  responses: page("the OpenAPI document", "application/json"),
  handler: function openApi(c) {
    cached ??= JSON.stringify(openApiDocument());
    return c.body(cached, 200, {
      "Content-Type": "application/json; charset=utf-8",
      "Access-Control-Allow-Origin": "*",
    });
  },
});

/** The API role's tenant routes: devices, rules, alerts, channels, message routes, the dashboard's reads, the live stream. */
export const tenantApiRoutes = [
  ...apiRoutes,
  ...channelRoutes,
  ...messageRoutes,
  ...dashboardApiRoutes,
  ...streamRoutes,
];
/** The API role's public routes: the API description, its docs page and the dashboard's pages. */
export const publicApiRoutes: readonly Route<UiDeps>[] = [openApiRoute, ...uiRoutes];

/** Every route of the server, whichever role serves it. */
export const ALL_ROUTES: readonly Route[] = [
  ...ingestRoutes,
  ...osmandRoutes,
  ...owntracksRoutes,
  ...influxRoutes,
  ...influxPublicRoutes,
  ...tenantApiRoutes,
  ...provisionRoutes,
  ...adminRoutes,
  ...serviceRoutes,
  ...publicApiRoutes,
];

export function openApiDocument(): Record<string, any> {
  return buildDocument(
    ALL_ROUTES,
    {
      title: "telemetry",
      version: pkg.version,
      description:
        "Self-hosted telemetry server: devices POST readings, the server stores them durably (NATS JetStream, then PostgreSQL/TimescaleDB), evaluates alert rules and notifies channels. " +
        'Tenant routes take `Authorization: Bearer <tenant API key>` (ingest also a device key, /api/v1/provision only a provisioning token); the admin API takes the admin token. Errors are `{"error":{"code","message","details"?}}`.',
    },
    errorSchema,
  );
}
