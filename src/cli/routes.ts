/**
 * `telemetry routes list|show|create|pause|resume|replay|delete`: a tenant's message routes, on the
 * database and the broker the server uses (decision 0610). The running server picks changes up
 * within a second.
 */
import { defineCommand } from "citty";
import { join, resolve } from "node:path";
import type { Config } from "../config/schema.ts";
import type { Sql } from "../db/client.ts";
import type { Broker } from "../nats/connection.ts";
import { insertRoute, routeCreate, routeJson, type MessageRouteDeps } from "../notify/message-routes.ts";
import { createSecretBox, loadOrCreateKey, parseKey } from "../notify/secrets.ts";
import { configOrExit, fail, settingArgs } from "./common.ts";
import { withBroker, withDatabase } from "./services.ts";
import { validated } from "./tenants.ts";

const settings = settingArgs([
  "databaseUrl",
  "natsUrl",
  "dataDir",
  "streamName",
  "secretKey",
  "webhookAllow",
  "logLevel",
]);
const common = {
  ...settings,
  json: { type: "boolean", description: "Print JSON" },
  tenant: { type: "positional", description: "Tenant id", required: true },
} as const;
const named = { ...common, route: { type: "positional", description: "Route name or id", required: true } } as const;

type View = Awaited<ReturnType<typeof routeJson>>;
const line = (r: View) =>
  `${r.name}\t${r.state}\t${r.destination.type} ${"url" in r.destination ? r.destination.url.replace(/\?.*$/, "") : r.destination.subject}\tlag ${r.lag ?? "?"}\tpending ${r.pending_batches}\tfailed ${r.failed_batches}\t${r.id}`;

function withRoutes(args: Record<string, unknown>, fn: (deps: MessageRouteDeps) => Promise<void>) {
  const config: Config = configOrExit(args as never);
  const secrets = createSecretBox(
    config.secretKey ? parseKey(config.secretKey) : loadOrCreateKey(join(resolve(config.dataDir), "secret.key")),
  );
  return withDatabase(config, (sql: Sql) =>
    withBroker(config, (broker: Broker) =>
      fn({ sql, broker, secrets, stream: config.streamName, targets: config.webhookAllow }),
    ),
  ).catch(fail);
}

async function findRoute(deps: MessageRouteDeps, tenant: string, ref: string) {
  const [row] = await deps.sql`
    SELECT * FROM routes WHERE tenant = ${tenant} AND (name = ${ref} OR id::text = ${ref})`;
  if (!row) throw new Error(`no route ${ref} of tenant ${tenant}`);
  return row;
}

const out = (json: unknown, value: unknown, text: string) =>
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : text}\n`);

const list = defineCommand({
  meta: { name: "list", description: "A tenant's routes: state, destination, lag, pending and failed batches" },
  args: common,
  run: ({ args }) =>
    withRoutes(args, async (deps) => {
      const rows = await deps.sql`SELECT * FROM routes WHERE tenant = ${args.tenant} ORDER BY name`;
      const views = await Promise.all(rows.map((r) => routeJson(r, deps)));
      out(args.json, views, views.length ? views.map(line).join("\n") : "no routes");
    }),
});

const show = defineCommand({
  meta: { name: "show", description: "One route, with its filter and its failed list" },
  args: named,
  run: ({ args }) =>
    withRoutes(args, async (deps) => {
      const row = await findRoute(deps, args.tenant, args.route);
      const view = await routeJson(row, deps);
      const failed = await deps.sql`
        SELECT id, count, attempts, last_error, failed_at FROM route_batches
        WHERE route_id = ${row.id} AND status = 'failed' ORDER BY n`;
      out(
        args.json,
        { ...view, failed },
        [
          line(view),
          `filter: ${JSON.stringify(view.filter)}`,
          ...failed.map((f) => `failed ${f.id}: ${f.count} readings, ${f.attempts} attempts, ${f.last_error}`),
        ].join("\n"),
      );
    }),
});

const create = defineCommand({
  meta: { name: "create", description: "Create a route (a webhook's signing secret is printed once)" },
  args: {
    ...common,
    name: { type: "string", description: "Route name (a-z, 0-9, _, -)", required: true },
    filter: { type: "string", description: 'Filter JSON, e.g. {"device_pattern":"veh-*","condition":"speed > 80"}' },
    destination: {
      type: "string",
      description: 'Destination JSON, e.g. {"type":"webhook","url":"https://..."} or {"type":"nats"}',
      required: true,
    },
  },
  run: ({ args }) =>
    withRoutes(args, async (deps) => {
      const input = validated(routeCreate, {
        name: args.name,
        filter: args.filter ? JSON.parse(args.filter) : undefined,
        destination: JSON.parse(args.destination),
      });
      const view = await insertRoute(deps, args.tenant, input);
      out(
        args.json,
        view,
        `${line(view)}${"secret" in view ? `\n\n  ${view.secret}\n\n(signing secret, shown only now)` : ""}`,
      );
    }),
});

function setState(name: "pause" | "resume", state: "active" | "paused", description: string) {
  return defineCommand({
    meta: { name, description },
    args: named,
    run: ({ args }) =>
      withRoutes(args, async (deps) => {
        const row = await findRoute(deps, args.tenant, args.route);
        const [updated] = await deps.sql`
          UPDATE routes SET state = ${state}, updated_at = now() WHERE id = ${row.id} RETURNING *`;
        const view = await routeJson(updated!, deps);
        out(args.json, view, line(view));
      }),
  });
}

const replay = defineCommand({
  meta: {
    name: "replay",
    description: "Send a route's failed batches again (or one: --batch <id>), same delivery ids",
  },
  args: { ...named, batch: { type: "string", description: "Only this failed batch" } },
  run: ({ args }) =>
    withRoutes(args, async (deps) => {
      const row = await findRoute(deps, args.tenant, args.route);
      const rows = await deps.sql`
        UPDATE route_batches SET status = 'pending', attempts = 0, next_attempt_at = now(), failed_at = NULL
        WHERE route_id = ${row.id} AND status = 'failed' ${args.batch ? deps.sql`AND id::text = ${args.batch}` : deps.sql``}
        RETURNING id`;
      out(args.json, { replayed: rows.length }, `${rows.length} batch(es) pending again`);
    }),
});

const remove = defineCommand({
  meta: { name: "delete", description: "Delete a route with its pending and failed batches" },
  args: named,
  run: ({ args }) =>
    withRoutes(args, async (deps) => {
      const row = await findRoute(deps, args.tenant, args.route);
      await deps.sql`DELETE FROM routes WHERE id = ${row.id}`;
      out(args.json, { deleted: row.id }, `deleted ${row.name}`);
    }),
});

export const routes = defineCommand({
  meta: { name: "routes", description: "Message routes: forward a tenant's readings to webhooks, NATS and MQTT" },
  subCommands: {
    list,
    show,
    create,
    pause: setState("pause", "paused", "Pause a route (readings wait in the stream, within its retention)"),
    resume: setState("resume", "active", "Resume a route from where it stopped"),
    replay,
    delete: remove,
  },
});
