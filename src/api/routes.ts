/** API role: every tenant-scoped read/manage route behind one bearer-key check, the dashboard and the API description. */
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { Hono } from "hono";
import type { Sql } from "../db/client.ts";
import { requireTenant, type KeyResolver, type TenantEnv } from "../http/auth.ts";
import type { Broker } from "../nats/connection.ts";
import type { DeviceRegistry } from "../tenants/devices.ts";
import { alertRoutes } from "./alerts.ts";
import { deviceAdminRoutes } from "./device-admin.ts";
import { deviceRoutes } from "./devices.ts";
import { ruleRoutes } from "./rules.ts";
import { openApiRoutes } from "../openapi/routes.ts";
import { dashboardApiRoutes } from "../ui/api.ts";
import { uiRoutes } from "../ui/routes.ts";

export interface ApiDeps {
  db: PostgresJsDatabase;
  sql: Sql;
  broker: Broker;
  keys: KeyResolver;
  /** The ingest role's device sets in this process, told about registrations at once. */
  devices?: DeviceRegistry;
  /** Called after an alert changed state through the API (wakes a local notifier). */
  onAlertChange?: () => void;
}

export function apiRoutes(deps: ApiDeps) {
  const app = new Hono<TenantEnv>();
  const auth = requireTenant(deps.keys);
  for (const path of ["/api/v1/devices", "/api/v1/devices/*", "/api/v1/rules", "/api/v1/rules/*", "/api/v1/alerts", "/api/v1/alerts/*", "/api/v1/dashboard/*"]) {
    app.use(path, auth);
  }
  app.route("/", deviceRoutes(deps.db, deps.sql));
  app.route("/", deviceAdminRoutes(deps.sql, deps.devices));
  app.route("/", ruleRoutes(deps.db, deps.broker));
  app.route("/", alertRoutes(deps.sql, deps.onAlertChange ?? (() => {})));
  app.route("/", dashboardApiRoutes(deps.sql));
  // Public pages and the API description; everything they show comes through the routes above.
  app.route("/", uiRoutes());
  app.route("/", openApiRoutes());
  return app;
}
