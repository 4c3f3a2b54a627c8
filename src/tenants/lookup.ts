/**
 * A tenant's settings by its id, for the MQTT bridge (HTTP finds them through the key cache; an
 * MQTT message names its tenant in its subject, which nats-server's user permissions vouch for).
 * Same rules as the key cache: an answer is used for `ttlMs`, then the store is asked again (one
 * query per tenant however many messages wait); when the store does not answer within 2 s the
 * last answer is used however old it is, and a tenant never loaded is `unavailable`.
 */
import type { Sql } from "../db/client.ts";
import { deadline } from "../lib/deadline.ts";
import { logger } from "../lib/log.ts";
import { getTenant } from "./store.ts";
import { tenantSettings, type TenantLimits, type TenantSettings } from "./tenant.ts";

const log = logger("tenants");
const LOOKUP_TIMEOUT_MS = 2_000;
const RETRY_MS = 1_000;
const MAX_ENTRIES = 100_000;

/** The settings, `null` for no such tenant, or `unavailable` (store unreachable, never loaded). */
export type TenantLookupResult = TenantSettings | null | "unavailable";

interface Entry {
  settings: TenantSettings | null;
  checkedAt: number;
}

export class TenantLookup {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly now: () => number;
  private retryAt = 0;

  constructor(
    private readonly sql: Sql,
    private readonly opts: { ttlMs: number; defaults: TenantLimits; now?: () => number },
  ) {
    this.now = opts.now ?? Date.now;
  }

  async get(tenantId: string): Promise<TenantLookupResult> {
    const cached = this.entries.get(tenantId);
    const now = this.now();
    if (cached && (now - cached.checkedAt < this.opts.ttlMs || now < this.retryAt)) return cached.settings;
    if (!cached && now < this.retryAt) return "unavailable";
    try {
      return (await this.fetch(tenantId)).settings;
    } catch (err) {
      if (this.now() >= this.retryAt) log.warn({ err: (err as Error).message }, "key store unreachable: using the tenant settings read before");
      this.retryAt = this.now() + RETRY_MS;
      return cached ? cached.settings : "unavailable";
    }
  }

  private fetch(tenantId: string): Promise<Entry> {
    let p = this.inflight.get(tenantId);
    if (!p) {
      p = deadline(getTenant(this.sql, tenantId), LOOKUP_TIMEOUT_MS, "tenant lookup")
        .then((row) => {
          const entry = { settings: row ? tenantSettings(row, this.opts.defaults) : null, checkedAt: this.now() };
          this.entries.delete(tenantId);
          if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
          this.entries.set(tenantId, entry);
          return entry;
        })
        .finally(() => this.inflight.delete(tenantId));
      this.inflight.set(tenantId, p);
    }
    return p;
  }
}
