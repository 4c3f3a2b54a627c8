/**
 * A tenant's settings by its id, for the MQTT bridge (HTTP finds them through the key cache; an
 * MQTT message names its tenant in its subject, which nats-server's user permissions vouch for).
 * Same rules as the key cache: a tenant seen before is answered from memory at once, and an
 * answer older than 3/4 of `ttlMs` is re-read in the background (one query per tenant at a time,
 * until it settles); through a database outage the last answer is used however old it is. Only a
 * tenant never loaded waits for the store (2 s at most), and is `unavailable` when it does not
 * answer.
 */
import type { Sql } from "../db/client.ts";
import { Lru } from "../core/lru.ts";
import { SingleFlight } from "../core/single-flight.ts";
import { deadline } from "../lib/deadline.ts";
import { logger } from "../lib/log.ts";
import { getTenant } from "./store.ts";
import type { TenantLimits, TenantSettings } from "../core/tenant.ts";
import { tenantSettings } from "./tenant.ts";

const log = logger("tenants");
const LOOKUP_TIMEOUT_MS = 2_000;
const RETRY_MS = 1_000;
const MAX_ENTRIES = 100_000;

/** The settings, `null` for no such tenant, or `unavailable` (store unreachable, never loaded). */
export type TenantLookupResult = TenantSettings | null | "unavailable";

interface Entry {
  settings: TenantSettings | null;
  checkedAt: number;
  /** No background re-read before this (the last one failed). */
  retryAt: number;
}

export class TenantLookup {
  private readonly entries = new Lru<string, Entry>(MAX_ENTRIES);
  private readonly queries = new SingleFlight<string, Entry>();
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
    if (cached) {
      if (now - cached.checkedAt >= (this.opts.ttlMs * 3) / 4 && now >= cached.retryAt && !this.queries.has(tenantId)) {
        this.query(tenantId).catch((err) => {
          cached.retryAt = this.now() + RETRY_MS;
          this.failed(err);
        });
      }
      return cached.settings;
    }
    if (now < this.retryAt) return "unavailable";
    try {
      return (await deadline(this.query(tenantId), LOOKUP_TIMEOUT_MS, "tenant lookup")).settings;
    } catch (err) {
      this.failed(err);
      return "unavailable";
    }
  }

  private failed(err: unknown): void {
    if (this.now() >= this.retryAt)
      log.warn({ err: (err as Error).message }, "key store unreachable: using the tenant settings read before");
    this.retryAt = this.now() + RETRY_MS;
  }

  /** One query per tenant until it settles, however many wait for it or give up on it. */
  private query(tenantId: string): Promise<Entry> {
    return this.queries.run(tenantId, () =>
      getTenant(this.sql, tenantId).then((row) => {
        const entry = {
          settings: row ? tenantSettings(row, this.opts.defaults) : null,
          checkedAt: this.now(),
          retryAt: 0,
        };
        this.entries.set(tenantId, entry);
        return entry;
      }),
    );
  }
}
