/**
 * Key resolution for every request, without a database round trip per request: verified keys
 * (and unknown ones) are remembered with their tenant's settings for `ttlMs`; after that the next
 * request asks the key store again. So a revocation or suspension made elsewhere takes effect
 * within the TTL; one made through this process (admin API) invalidates at once.
 *
 * When the key store cannot answer (an error, or nothing within 2 s), the last
 * answer is used however old it is: ingest keeps working through a database outage for every key
 * seen before it (and those `warm` loaded at start). A key never seen cannot be judged then:
 * `unavailable` (503, not 401). For 1 s after a failure, requests do not wait on the database
 * at all.
 */
import type { Sql } from "../db/client.ts";
import { deadline } from "../lib/deadline.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import { hashKey, keyPrefix, sameHash } from "./keys.ts";
import { activeKeys, findKey, touchKeys } from "./store.ts";
import { tenantSettings, type KeyResolution, type TenantLimits, type TenantSettings } from "./tenant.ts";

const log = logger("keys");
const LOOKUP_TIMEOUT_MS = 2_000;
const RETRY_MS = 1_000;
const MAX_ENTRIES = 100_000;
/** How often last_used_at is written. */
const TOUCH_INTERVAL_MS = 60_000;

export interface KeyCacheOptions {
  ttlMs: number;
  defaults: TenantLimits;
  now?: () => number;
}

interface Entry {
  /** null: no such key, or revoked. */
  found: { keyId: string; tenant: TenantSettings } | null;
  checkedAt: number;
}

export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  private readonly used = new Map<string, number>();
  private readonly now: () => number;
  private readonly timer: Timer;
  private retryAt = 0;

  constructor(
    private readonly sql: Sql,
    private readonly opts: KeyCacheOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.timer = setInterval(() => void this.touch(), TOUCH_INTERVAL_MS);
    this.timer.unref();
  }

  readonly resolve = async (key: string): Promise<KeyResolution> => {
    const hash = hashKey(key);
    const now = this.now();
    const cached = this.entries.get(hash);
    if (cached && (now - cached.checkedAt < this.opts.ttlMs || now < this.retryAt)) {
      metrics.authLookups.inc({ result: now - cached.checkedAt < this.opts.ttlMs ? "cached" : "stale" });
      return this.answer(cached);
    }
    if (!cached && now < this.retryAt) {
      metrics.authLookups.inc({ result: "unavailable" });
      return { status: "unavailable" };
    }
    try {
      const entry = await this.fetch(key, hash);
      metrics.authLookups.inc({ result: "fetched" });
      return this.answer(entry);
    } catch (err) {
      if (this.now() >= this.retryAt) log.warn({ err: (err as Error).message }, "key store unreachable: using the keys verified before");
      this.retryAt = this.now() + RETRY_MS;
      metrics.authLookups.inc({ result: cached ? "stale" : "unavailable" });
      return cached ? this.answer(cached) : { status: "unavailable" };
    }
  };

  /**
   * Loads the most recently used active keys, so that keys this process has not served yet also
   * work through a database outage that begins before their first request.
   */
  async warm(limit = 10_000): Promise<void> {
    for (const { key, tenant } of await activeKeys(this.sql, limit)) {
      this.entries.set(key.hash, { found: { keyId: key.id, tenant: tenantSettings(tenant, this.opts.defaults) }, checkedAt: this.now() });
    }
  }

  /** Forget a key now (it was revoked through this process). */
  invalidateKey(keyId: string): void {
    for (const [hash, e] of this.entries) if (e.found?.keyId === keyId) this.entries.delete(hash);
  }

  /** Forget a tenant's settings now (suspended, resumed or changed through this process). */
  invalidateTenant(tenantId: string): void {
    for (const [hash, e] of this.entries) if (e.found?.tenant.id === tenantId) this.entries.delete(hash);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.touch();
  }

  private answer(e: Entry): KeyResolution {
    if (!e.found) return { status: "unknown" };
    this.used.set(e.found.keyId, this.now());
    return { status: "ok", ...e.found };
  }

  /** One lookup per key at a time, however many requests wait for it. */
  private fetch(key: string, hash: string): Promise<Entry> {
    let p = this.inflight.get(hash);
    if (!p) {
      p = deadline(this.lookup(key, hash), LOOKUP_TIMEOUT_MS, "key lookup").finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, p);
    }
    return p;
  }

  private async lookup(key: string, hash: string): Promise<Entry> {
    const row = await findKey(this.sql, keyPrefix(key, hash));
    const valid = row !== undefined && sameHash(row.key.hash, hash) && row.key.revoked_at === null;
    const entry: Entry = { found: valid ? { keyId: row.key.id, tenant: tenantSettings(row.tenant, this.opts.defaults) } : null, checkedAt: this.now() };
    this.entries.delete(hash);
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(hash, entry);
    return entry;
  }

  private async touch(): Promise<void> {
    if (this.used.size === 0) return;
    const batch = new Map(this.used);
    this.used.clear();
    await touchKeys(this.sql, batch).catch(() => {
      for (const [id, at] of batch) if (!this.used.has(id)) this.used.set(id, at);
    });
  }
}
