/** The channel routes alone behind a tenant key check, as the server mounts them in its tenant group. */
import type { Sql } from "../../src/db/client.ts";
import { requireTenant, type KeyResolver } from "../../src/http/auth.ts";
import { mountGroup } from "../../src/http/route.ts";
import type { SecretBox } from "../../src/notify/secrets.ts";
import { channelRoutes as routes } from "../../src/notify/routes.ts";

export function channelRoutes(sql: Sql, keys: KeyResolver, secrets: SecretBox) {
  return mountGroup("tenant", requireTenant(keys), routes, { sql, secrets });
}
