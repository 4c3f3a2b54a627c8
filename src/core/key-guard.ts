/**
 * What checking keys that are not in the key cache may cost, in memory and pure (injectable
 * clock, no I/O): a failure budget per client address (unknown, revoked and malformed keys take
 * from it; when it is empty, that address's keys that are not cached are refused with 429 before
 * anything else is done), and one budget of key-store lookups per second for the whole process.
 * IPv6 clients count per /64, the block one host usually gets; IPv4-mapped IPv6 counts as IPv4.
 */
import { TokenBuckets, type Limit } from "./token-bucket.ts";

/**
 * What any key looks like: 16 to 512 visible ASCII characters (configured keys are held to this,
 * generated ones have 54). Anything else is refused without a lookup.
 */
export const PLAUSIBLE_KEY = /^[\x21-\x7e]{16,512}$/;

export interface KeyGuardOptions {
  /** Failed key checks a client address may make per minute (also its burst). */
  failuresPerMinute: number;
  /** Key-store lookups of keys not in the cache per second, process-wide (also the burst). */
  lookupsPerSecond: number;
  now?: () => number;
  /** Most client addresses remembered (the least recently seen, full ones, are forgotten first). */
  maxClients?: number;
}

export class KeyGuard {
  private readonly clients: TokenBuckets;
  private readonly lookups: TokenBuckets;
  private readonly clientLimit: Limit;
  private readonly lookupLimit: Limit;

  constructor(opts: KeyGuardOptions) {
    this.clients = new TokenBuckets({ now: opts.now, maxEntries: opts.maxClients ?? 100_000 });
    this.lookups = new TokenBuckets({ now: opts.now, maxEntries: 1 });
    this.clientLimit = { ratePerSecond: opts.failuresPerMinute / 60, burst: opts.failuresPerMinute };
    this.lookupLimit = { ratePerSecond: opts.lookupsPerSecond, burst: opts.lookupsPerSecond };
  }

  /** 0 when the client may have its key looked up, else the ms until it may. */
  clientWaitMs(client: string): number {
    return this.clients.waitMs(clientGroup(client), 1, this.clientLimit);
  }

  /** A failed key check by this client. */
  failed(client: string): void {
    this.clients.takeUpTo(clientGroup(client), 1, this.clientLimit);
  }

  /** Takes one lookup from the process's budget: 0 when granted, else the ms until the next one is. */
  takeLookup(): number {
    const r = this.lookups.take("", 1, this.lookupLimit);
    return r.ok ? 0 : r.retryAfterMs;
  }
}

/** The unit a client address counts in: IPv4 as is, IPv6 by its /64. */
export function clientGroup(address: string): string {
  const a = address.trim().toLowerCase().replace(/%.*$/, "");
  if (a === "") return "unknown";
  const mapped = /^(?:0*:)*:?ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return mapped[1]!;
  if (!a.includes(":")) return a;
  const [head = "", tail] = a.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups =
    tail === undefined ? h : [...h, ...new Array<string>(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(":")}::/64`;
}
