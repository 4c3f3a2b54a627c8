/**
 * Partition leases in a KV bucket (decision 0550). Each evaluator process renews a member key and
 * the leases it holds every ttl/3; a lease names its holder and when it expires. A lease is taken
 * by a revision-checked write (create-if-absent, or over an expired or released one), so two
 * processes never both win it; it ends when its holder stops renewing (killed: after the TTL) or
 * releases it (clean stop, rebalance). Every round each process aims at ceil(leases / live
 * members): above it, it releases the surplus; below it, it takes free leases.
 */
import { errorText } from "../db/errors.ts";
import type { Logger } from "../lib/log.ts";
import { KvConflict, type KvBucket, type KvEntry } from "../nats/kv.ts";

export interface LeaseHooks {
  /** Starts work on a lease just taken (throwing gives it back). */
  claimed(name: string): Promise<void>;
  /** Stops work on a lease lost or given back; resolves when its work has stopped. */
  released(name: string): Promise<void>;
}

interface LeaseValue {
  holder: string;
  expiresAt: number;
}

const leaseKey = (name: string) => `p.${name}`;
const memberKey = (holder: string) => `m.${holder}`;

function parse(e: KvEntry): LeaseValue | null {
  if (e.value === null) return null;
  try {
    const v = JSON.parse(e.value) as LeaseValue;
    return typeof v.holder === "string" && typeof v.expiresAt === "number" ? v : null;
  } catch {
    return null;
  }
}

export class Leases {
  /** Held leases and the revision of their last write. */
  private readonly held = new Map<string, number>();
  private memberRevision = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private round: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly kv: KvBucket,
    private readonly names: readonly string[],
    private readonly holder: string,
    private readonly ttlMs: number,
    private readonly hooks: LeaseHooks,
    private readonly log: Logger,
  ) {}

  get mine(): string[] {
    return this.names.filter((n) => this.held.has(n));
  }

  /** Runs a first round (a lone process takes every lease before this resolves), then one every ttl/3. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.ttlMs / 3)));
  }

  /** One round: renew, then release the surplus or take free leases. Rounds never overlap. */
  tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.round ??= this.once()
      .catch((err) => this.log.warn({ err: errorText(err) }, "lease round failed; next round retries"))
      .finally(() => (this.round = null));
    return this.round;
  }

  /** Gives a lease back at once (its work found itself fenced out). */
  async drop(name: string): Promise<void> {
    const revision = this.held.get(name);
    if (revision === undefined) return;
    this.held.delete(name);
    await this.hooks.released(name);
    await this.kv.delete(leaseKey(name), revision).catch(() => {});
  }

  /** Stops renewing; releases every lease (after its work stopped) and the member key. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.round;
    await Promise.all(this.mine.map((n) => this.drop(n)));
    await this.kv.delete(memberKey(this.holder), this.memberRevision).catch(() => {});
  }

  private value(now: number): string {
    return JSON.stringify({ holder: this.holder, expiresAt: now + this.ttlMs } satisfies LeaseValue);
  }

  private async once(): Promise<void> {
    const now = Date.now();
    this.memberRevision = await this.kv
      .put(memberKey(this.holder), this.value(now), this.memberRevision)
      .catch(async (err) => {
        if (!(err instanceof KvConflict)) throw err;
        return this.kv.put(
          memberKey(this.holder),
          this.value(now),
          (await this.kv.get(memberKey(this.holder))).revision,
        );
      });
    const members = await this.liveMembers(now);
    const entries = new Map(
      await Promise.all(this.names.map(async (n) => [n, await this.kv.get(leaseKey(n))] as const)),
    );
    for (const name of this.mine) await this.renew(name, entries.get(name)!, now);
    if (this.stopped) return;
    const target = Math.ceil(this.names.length / Math.max(1, members));
    const mine = this.mine;
    if (mine.length > target) {
      for (const name of mine.slice(target)) await this.drop(name);
      return;
    }
    const free = this.names.filter((n) => {
      if (this.held.has(n)) return false;
      const v = parse(entries.get(n)!);
      return v === null || v.expiresAt <= now;
    });
    // Start at a place of our own, so processes taking leases at once mostly try different ones.
    const offset = free.length ? hash(this.holder) % free.length : 0;
    const order = [...free.slice(offset), ...free.slice(0, offset)];
    for (const name of order.slice(0, target - mine.length)) await this.take(name, entries.get(name)!, now);
  }

  private async liveMembers(now: number): Promise<number> {
    const keys = await this.kv.keys("m.");
    const values = await Promise.all(keys.map(async (k) => parse(await this.kv.get(k))));
    return values.filter((v) => v !== null && v.expiresAt > now).length;
  }

  private async renew(name: string, entry: KvEntry, now: number): Promise<void> {
    const revision = this.held.get(name)!;
    try {
      if (entry.revision !== revision) throw new KvConflict("written by another process");
      this.held.set(name, await this.kv.put(leaseKey(name), this.value(now), revision));
    } catch (err) {
      if (!(err instanceof KvConflict)) throw err;
      this.log.warn({ partition: name }, "partition lease lost; stopping its evaluation");
      this.held.delete(name);
      await this.hooks.released(name);
    }
  }

  private async take(name: string, entry: KvEntry, now: number): Promise<void> {
    let revision: number;
    try {
      revision = await this.kv.put(leaseKey(name), this.value(now), entry.revision);
    } catch (err) {
      if (err instanceof KvConflict) return; // another process took it first
      throw err;
    }
    this.held.set(name, revision);
    try {
      await this.hooks.claimed(name);
    } catch (err) {
      this.log.warn({ partition: name, err: errorText(err) }, "starting a partition failed; giving its lease back");
      await this.drop(name);
    }
  }
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) >>> 0;
  return h;
}
