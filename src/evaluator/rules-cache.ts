/**
 * Enabled rules per tenant, loaded in one query and kept for a few seconds. The API publishes on
 * RULES_CHANGED_SUBJECT (core/subject.ts) after every change, which drops the cache at once.
 */
import type { Rule } from "../core/rules/schema.ts";
import type { Sql } from "../db/client.ts";

export function ruleFromRow(r: Record<string, any>): Rule {
  return {
    id: r.id,
    tenant: r.tenant,
    name: r.name,
    enabled: r.enabled,
    severity: r.severity,
    metric: r.metric ?? undefined,
    devices: r.devices ?? undefined,
    condition: r.condition,
    for_seconds: r.for_seconds,
    cooldown_seconds: r.cooldown_seconds,
    ...(r.max_lateness_seconds === null || r.max_lateness_seconds === undefined
      ? {}
      : { max_lateness_seconds: r.max_lateness_seconds }),
  };
}

export class RulesCache {
  private byTenant: Map<string, Rule[]> | null = null;
  private loadedAt = 0;
  private loading: Promise<Map<string, Rule[]>> | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly ttlMs = 5_000,
  ) {}

  invalidate(): void {
    this.byTenant = null;
  }

  async forTenant(tenant: string): Promise<Rule[]> {
    return (await this.all()).get(tenant) ?? [];
  }

  async all(): Promise<Map<string, Rule[]>> {
    if (this.byTenant && Date.now() - this.loadedAt < this.ttlMs) return this.byTenant;
    this.loading ??= this.load().finally(() => (this.loading = null));
    return this.loading;
  }

  private async load(): Promise<Map<string, Rule[]>> {
    const rows = await this.sql`SELECT * FROM rules WHERE enabled ORDER BY tenant, created_at, id`;
    const map = new Map<string, Rule[]>();
    for (const row of rows) {
      const rule = ruleFromRow(row);
      let list = map.get(rule.tenant);
      if (!list) map.set(rule.tenant, (list = []));
      list.push(rule);
    }
    this.byTenant = map;
    this.loadedAt = Date.now();
    return map;
  }
}
