/** Alert rules, tenant-scoped: create, list, get, replace/patch, enable/disable, delete. */
import { and, asc, eq } from "drizzle-orm";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { v4 as uuidv4 } from "uuid";
import { z } from "zod";
import { ruleInputSchema, type RuleInput } from "../core/rules/schema.ts";
import { rules, ruleState } from "../db/schema.ts";
import { RULES_CHANGED_SUBJECT } from "../core/subject.ts";
import { HttpError } from "../http/errors.ts";
import { ok, routesOf } from "../http/route.ts";
import { issuesOf, parseJson, parseQuery, uuidParam } from "../http/validate.ts";
import type { Broker } from "../nats/connection.ts";
import { ruleSchema } from "../openapi/views.ts";

type RuleRow = typeof rules.$inferSelect;

export function ruleJson(r: RuleRow): z.output<typeof ruleSchema> {
  return {
    id: r.id,
    name: r.name,
    enabled: r.enabled,
    severity: r.severity,
    metric: r.metric,
    devices: r.devices,
    condition: r.condition,
    for_seconds: r.forSeconds,
    cooldown_seconds: r.cooldownSeconds,
    max_lateness_seconds: r.maxLatenessSeconds,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

const toColumns = (r: RuleInput) => ({
  name: r.name,
  enabled: r.enabled,
  severity: r.severity,
  metric: r.metric ?? null,
  devices: r.devices ?? null,
  condition: r.condition,
  forSeconds: r.for_seconds,
  cooldownSeconds: r.cooldown_seconds,
  maxLatenessSeconds: r.max_lateness_seconds ?? null,
});

export const listQuery = z.object({ enabled: z.enum(["true", "false"]).optional() });

export interface RuleDeps {
  db: PostgresJsDatabase;
  broker: Broker;
}

const route = routesOf<RuleDeps>();
const changed = (broker: Broker) => broker.nc.publish(RULES_CHANGED_SUBJECT);

async function find(db: PostgresJsDatabase, tenant: string, id: string): Promise<RuleRow> {
  const [row] = await db
    .select()
    .from(rules)
    .where(and(eq(rules.tenant, tenant), eq(rules.id, id)));
  if (!row) throw new HttpError(404, "not_found", "no such rule");
  return row;
}

/** Saves new settings; a changed condition, metric or scope starts the rule's state afresh. */
async function save({ db, broker }: RuleDeps, tenant: string, current: RuleRow, next: RuleInput) {
  const reset =
    JSON.stringify(current.condition) !== JSON.stringify(next.condition) ||
    current.metric !== (next.metric ?? null) ||
    JSON.stringify(current.devices) !== JSON.stringify(next.devices ?? null);
  const [row] = await db.transaction(async (tx) => {
    if (reset) await tx.delete(ruleState).where(eq(ruleState.ruleId, current.id));
    return tx
      .update(rules)
      .set({ ...toColumns(next), updatedAt: new Date() })
      .where(and(eq(rules.tenant, tenant), eq(rules.id, current.id)))
      .returning();
  });
  changed(broker);
  return row!;
}

const inputOf = (r: RuleRow): Record<string, unknown> => ({
  name: r.name,
  enabled: r.enabled,
  severity: r.severity,
  ...(r.metric === null ? {} : { metric: r.metric }),
  ...(r.devices === null ? {} : { devices: r.devices }),
  condition: r.condition,
  for_seconds: r.forSeconds,
  cooldown_seconds: r.cooldownSeconds,
  ...(r.maxLatenessSeconds === null ? {} : { max_lateness_seconds: r.maxLatenessSeconds }),
});

const ruleInput = ruleInputSchema.meta({ id: "RuleInput" });

const setEnabled = (action: "enable" | "disable", enabled: boolean) =>
  route({
    method: "post",
    path: `/api/v1/rules/:id/${action}`,
    tag: "rules",
    summary: `${action === "enable" ? "Enable" : "Disable"} a rule`,
    auth: "tenant",
    responses: { 200: ok("the rule", ruleSchema) },
    handler: async function setEnabled(c, { db, broker }) {
      const current = await find(db, c.get("tenant"), uuidParam(c));
      const [row] = await db
        .update(rules)
        .set({ enabled, updatedAt: new Date() })
        .where(eq(rules.id, current.id))
        .returning();
      changed(broker);
      return c.json(ruleJson(row!));
    },
  });

export const ruleRoutes = [
  route({
    method: "post",
    path: "/api/v1/rules",
    tag: "rules",
    summary: "Create an alert rule",
    auth: "tenant",
    body: ruleInput,
    responses: { 201: ok("created", ruleSchema) },
    handler: async function createRule(c, { db, broker }) {
      const input = await parseJson(ruleInputSchema, c);
      const [row] = await db
        .insert(rules)
        .values({ id: uuidv4(), tenant: c.get("tenant"), ...toColumns(input) })
        .returning();
      changed(broker);
      return c.json(ruleJson(row!), 201);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/rules",
    tag: "rules",
    summary: "List rules",
    auth: "tenant",
    query: listQuery,
    responses: { 200: ok("rules, oldest first", z.object({ rules: z.array(ruleSchema) })) },
    handler: async function listRules(c, { db }) {
      const q = parseQuery(listQuery, c);
      const conds = [eq(rules.tenant, c.get("tenant"))];
      if (q.enabled) conds.push(eq(rules.enabled, q.enabled === "true"));
      const rows = await db
        .select()
        .from(rules)
        .where(and(...conds))
        .orderBy(asc(rules.createdAt), asc(rules.id));
      return c.json({ rules: rows.map(ruleJson) });
    },
  }),
  route({
    method: "get",
    path: "/api/v1/rules/:id",
    tag: "rules",
    summary: "Get a rule",
    auth: "tenant",
    responses: { 200: ok("the rule", ruleSchema) },
    handler: async function getRule(c, { db }) {
      return c.json(ruleJson(await find(db, c.get("tenant"), uuidParam(c))));
    },
  }),
  route({
    method: "put",
    path: "/api/v1/rules/:id",
    tag: "rules",
    summary: "Replace a rule (a changed condition, metric or devices starts its state afresh)",
    auth: "tenant",
    body: ruleInput,
    responses: { 200: ok("the rule", ruleSchema) },
    handler: async function replaceRule(c, deps) {
      const current = await find(deps.db, c.get("tenant"), uuidParam(c));
      return c.json(ruleJson(await save(deps, c.get("tenant"), current, await parseJson(ruleInputSchema, c))));
    },
  }),
  route({
    method: "patch",
    path: "/api/v1/rules/:id",
    tag: "rules",
    summary: "Change some fields of a rule (merged, then validated as a whole)",
    auth: "tenant",
    body: z.record(z.string(), z.unknown()).meta({ description: "any fields of RuleInput" }),
    responses: { 200: ok("the rule", ruleSchema) },
    handler: async function patchRule(c, deps) {
      const current = await find(deps.db, c.get("tenant"), uuidParam(c));
      const patch = await parseJson(z.record(z.string(), z.unknown()), c);
      const merged = ruleInputSchema.safeParse({ ...inputOf(current), ...patch });
      if (!merged.success)
        throw new HttpError(422, "invalid_body", "the request body is invalid", issuesOf(merged.error));
      return c.json(ruleJson(await save(deps, c.get("tenant"), current, merged.data)));
    },
  }),
  setEnabled("enable", true),
  setEnabled("disable", false),
  route({
    method: "delete",
    path: "/api/v1/rules/:id",
    tag: "rules",
    summary: "Delete a rule",
    auth: "tenant",
    responses: { 204: ok("deleted") },
    handler: async function deleteRule(c, { db, broker }) {
      const current = await find(db, c.get("tenant"), uuidParam(c));
      await db.delete(rules).where(eq(rules.id, current.id));
      changed(broker);
      return c.body(null, 204);
    },
  }),
];
