/**
 * Key resolution for every request, without a database round trip per request.
 *
 * Verified keys live in an LRU of their own (100,000): only an answer of the key store that the
 * key exists and is active puts one there, so unknown keys can never push them out. "No such key"
 * (unknown or revoked) answers live in a separate, smaller LRU for the TTL.
 *
 * A verified key is always answered from the cache at once (stale-while-revalidate): when its
 * answer is older than 3/4 of `ttlMs`, the request also starts a re-read in the background, one
 * per key at a time (the query stays the key's only one until it settles, also when the database
 * hangs). So with the database up, a request is judged by an answer younger than the TTL, unless
 * no request of the key came while its answer was between 3/4 of the TTL and the TTL old: then the
 * first requests after are judged by its last answer, and the re-read they start decides the next.
 * A revocation or suspension made through this process (admin API) invalidates at once. Through a
 * database outage, every key verified before keeps working on its last answer, however old.
 *
 * A key not in the cache costs a key-store lookup, bounded (core/key-guard.ts): a client address
 * (the socket's peer, or behind a trusted proxy the client it names) with too many failed checks
 * gets `limited` (429), and past the process's lookups per second
 * `limited` global (503). A key that cannot be a key costs nothing. When the store cannot answer
 * (an error, or nothing within 2 s) an unseen key is `unavailable` (503), and for 1 s after a
 * failure, unseen keys do not wait on the database at all.
 */
import type { Sql } from "../db/client.ts";
import { SingleFlight } from "../core/single-flight.ts";
import { clientOf, type TrustList, trustList } from "../core/client-address.ts";
import { KeyGuard, PLAUSIBLE_KEY } from "../core/key-guard.ts";
import { Lru } from "../core/lru.ts";
import { deadline } from "../lib/deadline.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import { hashKey, keyPrefix, sameHash } from "./keys.ts";
import { activeKeys, findKey, touchKeys } from "./store.ts";
import type { KeyKind, KeyResolution, RequestOrigin, TenantLimits, TenantSettings } from "../core/tenant.ts";
import { tenantSettings } from "./tenant.ts";

const log = logger("keys");
const LOOKUP_TIMEOUT_MS = 2_000;
const RETRY_MS = 1_000;
/** How often last_used_at is written. */
const TOUCH_INTERVAL_MS = 60_000;

export interface KeyCacheOptions {
  ttlMs: number;
  defaults: TenantLimits;
  /** Failed key checks per client address per minute, and key-store lookups per second. */
  failuresPerMinute: number;
  lookupsPerSecond: number;
  /** Proxies whose X-Forwarded-For names the client (IPs or CIDRs). */
  trustedProxies?: readonly string[];
  now?: () => number;
  maxVerified?: number;
  maxUnknown?: number;
}

interface Verified {
  keyId: string;
  tenant: TenantSettings;
  kind: KeyKind;
  device: string | null;
  checkedAt: number;
  /** No background re-read before this (the last one failed). */
  retryAt: number;
}

export class KeyCache {
  private readonly verified: Lru<string, Verified>;
  /** Hash -> when the store said there is no such active key. */
  private readonly unknown: Lru<string, number>;
  /** The one store query of a key, until it settles (not until a caller stops waiting). */
  private readonly queries = new SingleFlight<string, Verified | null>();
  private readonly used = new Map<string, number>();
  private readonly guard: KeyGuard;
  private readonly proxies: TrustList | null;
  private readonly now: () => number;
  private readonly timer: Timer;
  private retryAt = 0;
  /** Bumped by invalidations: a query that began before one does not store its answer. */
  private generation = 0;
  private touching = false;

  constructor(
    private readonly sql: Sql,
    private readonly opts: KeyCacheOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.verified = new Lru(opts.maxVerified ?? 100_000);
    this.unknown = new Lru(opts.maxUnknown ?? 10_000);
    this.proxies = trustList(opts.trustedProxies ?? []);
    this.guard = new KeyGuard({
      failuresPerMinute: opts.failuresPerMinute,
      lookupsPerSecond: opts.lookupsPerSecond,
      now: this.now,
    });
    this.timer = setInterval(() => void this.touch(), TOUCH_INTERVAL_MS);
    this.timer.unref();
  }

  readonly resolve = async (key: string, from: RequestOrigin = { peer: "unknown" }): Promise<KeyResolution> => {
    const now = this.now();
    const hash = PLAUSIBLE_KEY.test(key) ? hashKey(key) : null;
    const cached = hash ? this.verified.get(hash) : undefined;
    if (cached) {
      const age = now - cached.checkedAt;
      if (age >= (this.opts.ttlMs * 3) / 4 && now >= cached.retryAt) this.revalidate(key, hash!, cached);
      metrics.authLookups.inc({ result: age < this.opts.ttlMs ? "cached" : "stale" });
      return this.ok(cached);
    }
    const client = clientOf(this.proxies, from.peer, from.forwardedFor);
    const clientWait = this.guard.clientWaitMs(client);
    if (clientWait > 0)
      return this.refuse("client_limited", { status: "limited", scope: "client", retryAfterMs: clientWait });
    if (!hash) return this.failed(client, "malformed");
    const unknownAt = this.unknown.get(hash);
    if (unknownAt !== undefined && now - unknownAt < this.opts.ttlMs) return this.failed(client, "cached");
    if (now < this.retryAt) return this.refuse("unavailable", { status: "unavailable" });
    if (!this.queries.has(hash)) {
      const busy = this.guard.takeLookup();
      if (busy > 0) return this.refuse("busy", { status: "limited", scope: "global", retryAfterMs: busy });
    }
    try {
      const found = await deadline(this.query(key, hash), LOOKUP_TIMEOUT_MS, "key lookup");
      if (!found) return this.failed(client, "fetched");
      metrics.authLookups.inc({ result: "fetched" });
      return this.ok(found);
    } catch (err) {
      this.storeFailed(err);
      return this.refuse("unavailable", { status: "unavailable" });
    }
  };

  /**
   * Loads the most recently used active keys, so that keys this process has not served yet also
   * work through a database outage that begins before their first request.
   */
  async warm(limit = 10_000): Promise<void> {
    for (const { key, tenant } of await activeKeys(this.sql, limit)) {
      this.verified.set(key.hash, {
        keyId: key.id,
        tenant: tenantSettings(tenant, this.opts.defaults),
        kind: key.kind,
        device: key.device,
        checkedAt: this.now(),
        retryAt: 0,
      });
    }
  }

  /** Forget a key now (it was revoked through this process). */
  invalidateKey(keyId: string): void {
    this.generation++;
    for (const [hash, e] of [...this.verified.entries()]) if (e.keyId === keyId) this.verified.delete(hash);
  }

  /** Forget a tenant's settings now (suspended, resumed or changed through this process). */
  invalidateTenant(tenantId: string): void {
    this.generation++;
    for (const [hash, e] of [...this.verified.entries()]) if (e.tenant.id === tenantId) this.verified.delete(hash);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.touch();
  }

  private ok(e: Verified): KeyResolution {
    this.used.set(e.keyId, this.now());
    return { status: "ok", keyId: e.keyId, tenant: e.tenant, kind: e.kind, device: e.device };
  }

  private failed(client: string, result: string): KeyResolution {
    this.guard.failed(client);
    metrics.authLookups.inc({ result });
    return { status: "unknown" };
  }

  private refuse(result: string, r: KeyResolution): KeyResolution {
    metrics.authLookups.inc({ result });
    return r;
  }

  private storeFailed(err: unknown): void {
    if (this.now() >= this.retryAt)
      log.warn({ err: (err as Error).message }, "key store unreachable: using the keys verified before");
    this.retryAt = this.now() + RETRY_MS;
  }

  /** A background re-read of a cached key; a failure keeps the answer and waits 1 s before the next try. */
  private revalidate(key: string, hash: string, entry: Verified): void {
    if (this.queries.has(hash)) return;
    this.query(key, hash).catch((err) => {
      entry.retryAt = this.now() + RETRY_MS;
      this.storeFailed(err);
    });
  }

  private query(key: string, hash: string): Promise<Verified | null> {
    return this.queries.run(hash, () => this.lookup(key, hash));
  }

  private async lookup(key: string, hash: string): Promise<Verified | null> {
    const generation = this.generation;
    const row = await findKey(this.sql, keyPrefix(key, hash));
    const valid = row !== undefined && sameHash(row.key.hash, hash) && row.key.revoked_at === null;
    const entry = valid
      ? {
          keyId: row.key.id as string,
          tenant: tenantSettings(row.tenant, this.opts.defaults),
          kind: row.key.kind as KeyKind,
          device: row.key.device as string | null,
          checkedAt: this.now(),
          retryAt: 0,
        }
      : null;
    if (generation !== this.generation) return entry; // an invalidation came in between: the next request asks again
    if (entry) {
      this.unknown.delete(hash);
      this.verified.set(hash, entry);
    } else {
      this.verified.delete(hash);
      this.unknown.set(hash, this.now());
    }
    return entry;
  }

  private async touch(): Promise<void> {
    if (this.used.size === 0 || this.touching) return;
    this.touching = true;
    const batch = new Map(this.used);
    this.used.clear();
    await touchKeys(this.sql, batch)
      .catch(() => {
        for (const [id, at] of batch) if (!this.used.has(id)) this.used.set(id, at);
      })
      .finally(() => (this.touching = false));
  }
}
