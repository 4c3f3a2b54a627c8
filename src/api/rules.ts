/** Alert rules, tenant-scoped: create, list, get, replace/patch, enable/disable, delete. */
import { and, asc, eq } from "drizzle-orm";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { Hono } from "hono";
import { v4 as uuidv4 } from "uuid";
import { z } from "zod";
import { ruleInputSchema, type RuleInput } from "../core/rules/schema.ts";
import { rules, ruleState } from "../db/schema.ts";
import { RULES_CHANGED_SUBJECT } from "../core/subject.ts";
import type { TenantEnv } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";
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
});

export const listQuery = z.object({ enabled: z.enum(["true", "false"]).optional() });

export function ruleRoutes(db: PostgresJsDatabase, broker: Broker) {
  const app = new Hono<TenantEnv>();
  const changed = () => broker.nc.publish(RULES_CHANGED_SUBJECT);

  const find = async (tenant: string, id: string): Promise<RuleRow> => {
    const [row] = await db.select().from(rules).where(and(eq(rules.tenant, tenant), eq(rules.id, id)));
    if (!row) throw new HttpError(404, "not_found", "no such rule");
    return row;
  };

  /** Saves new settings; a changed condition, metric or scope starts the rule's state afresh. */
  const save = async (tenant: string, current: RuleRow, next: RuleInput) => {
    const reset =
      JSON.stringify(current.condition) !== JSON.stringify(next.condition) ||
      current.metric !== (next.metric ?? null) ||
      JSON.stringify(current.devices) !== JSON.stringify(next.devices ?? null);
    const [row] = await db.transaction(async (tx) => {
      if (reset) await tx.delete(ruleState).where(eq(ruleState.ruleId, current.id));
      return tx.update(rules).set({ ...toColumns(next), updatedAt: new Date() }).where(and(eq(rules.tenant, tenant), eq(rules.id, current.id))).returning();
    });
    changed();
    return row!;
  };

  const inputOf = (r: RuleRow): Record<string, unknown> => ({
    name: r.name,
    enabled: r.enabled,
    severity: r.severity,
    ...(r.metric === null ? {} : { metric: r.metric }),
    ...(r.devices === null ? {} : { devices: r.devices }),
    condition: r.condition,
    for_seconds: r.forSeconds,
    cooldown_seconds: r.cooldownSeconds,
  });

  app.post("/api/v1/rules", async function createRule(c) {
    const input = await parseJson(ruleInputSchema, c);
    const [row] = await db.insert(rules).values({ id: uuidv4(), tenant: c.get("tenant"), ...toColumns(input) }).returning();
    changed();
    return c.json(ruleJson(row!), 201);
  });

  app.get("/api/v1/rules", async function listRules(c) {
    const q = parseQuery(listQuery, c);
    const conds = [eq(rules.tenant, c.get("tenant"))];
    if (q.enabled) conds.push(eq(rules.enabled, q.enabled === "true"));
    const rows = await db.select().from(rules).where(and(...conds)).orderBy(asc(rules.createdAt), asc(rules.id));
    return c.json({ rules: rows.map(ruleJson) });
  });

  app.get("/api/v1/rules/:id", async function getRule(c) {
    return c.json(ruleJson(await find(c.get("tenant"), uuidParam(c))));
  });

  app.put("/api/v1/rules/:id", async function replaceRule(c) {
    const current = await find(c.get("tenant"), uuidParam(c));
    return c.json(ruleJson(await save(c.get("tenant"), current, await parseJson(ruleInputSchema, c))));
  });

  app.patch("/api/v1/rules/:id", async function patchRule(c) {
    const current = await find(c.get("tenant"), uuidParam(c));
    const patch = await parseJson(z.record(z.string(), z.unknown()), c);
    const merged = ruleInputSchema.safeParse({ ...inputOf(current), ...patch });
    if (!merged.success) throw new HttpError(422, "invalid_body", "the request body is invalid", issuesOf(merged.error));
    return c.json(ruleJson(await save(c.get("tenant"), current, merged.data)));
  });

  for (const [action, enabled] of [["enable", true], ["disable", false]] as const) {
    app.post(`/api/v1/rules/:id/${action}`, async function setEnabled(c) {
      const current = await find(c.get("tenant"), uuidParam(c));
      const [row] = await db.update(rules).set({ enabled, updatedAt: new Date() }).where(eq(rules.id, current.id)).returning();
      changed();
      return c.json(ruleJson(row!));
    });
  }

  app.delete("/api/v1/rules/:id", async function deleteRule(c) {
    const current = await find(c.get("tenant"), uuidParam(c));
    await db.delete(rules).where(eq(rules.id, current.id));
    changed();
    return c.body(null, 204);
  });
  return app;
}
