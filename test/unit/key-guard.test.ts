import { describe, expect, test } from "bun:test";
import { clientGroup, KeyGuard, PLAUSIBLE_KEY } from "../../src/core/key-guard.ts";
import { Lru } from "../../src/core/lru.ts";
import { parseCidr } from "../../src/core/address.ts";
import { clientOf, trustList } from "../../src/core/client-address.ts";

const clock = () => {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
};

describe("key guard", () => {
  test("a client's failures are counted until its budget is spent, then refill per minute", () => {
    const c = clock();
    const g = new KeyGuard({ failuresPerMinute: 3, lookupsPerSecond: 100, now: c.now });
    for (let i = 0; i < 3; i++) {
      expect(g.clientWaitMs("10.0.0.1")).toBe(0);
      g.failed("10.0.0.1");
    }
    expect(g.clientWaitMs("10.0.0.1")).toBe(20_000); // 3 per minute: one every 20 s
    expect(g.clientWaitMs("10.0.0.2")).toBe(0); // others are not affected
    c.advance(20_000);
    expect(g.clientWaitMs("10.0.0.1")).toBe(0);
  });

  test("the process's lookups per second are a bucket of their own", () => {
    const c = clock();
    const g = new KeyGuard({ failuresPerMinute: 3, lookupsPerSecond: 2, now: c.now });
    expect([g.takeLookup(), g.takeLookup(), g.takeLookup()]).toEqual([0, 0, 500]);
    c.advance(500);
    expect(g.takeLookup()).toBe(0);
  });

  test("IPv6 counts per /64, IPv4-mapped as IPv4", () => {
    expect(clientGroup("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(clientGroup("2001:db8:1:2:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(clientGroup("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(clientGroup("::1")).toBe("0:0:0:0::/64");
    expect(clientGroup("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(clientGroup("192.0.2.7")).toBe("192.0.2.7");
    expect(clientGroup("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(clientGroup("")).toBe("unknown");
  });

  test("a plausible key: 16 to 512 visible ASCII characters", () => {
    expect(PLAUSIBLE_KEY.test(`tk_${"a".repeat(51)}`)).toBe(true);
    expect(PLAUSIBLE_KEY.test("test-key-acme-0123456789")).toBe(true);
    for (const bad of [
      "short",
      "x".repeat(513),
      "sixteen chars ok",
      "tk_\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9",
    ])
      expect(PLAUSIBLE_KEY.test(bad)).toBe(false);
  });
});

describe("LRU", () => {
  test("forgets the least recently used entry when full; get counts as use, peek does not", () => {
    const lru = new Lru<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    lru.get("a");
    lru.set("c", 3); // b is the least recently used
    expect([lru.peek("a"), lru.peek("b"), lru.peek("c")]).toEqual([1, undefined, 3]);
    lru.peek("a");
    lru.set("d", 4); // peek did not save a
    expect([lru.peek("a"), lru.size]).toEqual([undefined, 2]);
  });
});

describe("client address behind proxies", () => {
  const proxies = trustList(["10.0.0.0/8", "::1"]);

  test("without trusted proxies, or from an untrusted peer, the header is ignored", () => {
    expect(clientOf(null, "192.0.2.1", "203.0.113.9")).toBe("192.0.2.1");
    expect(clientOf(proxies, "192.0.2.1", "203.0.113.9")).toBe("192.0.2.1");
    expect(clientOf(proxies, "10.1.1.1", undefined)).toBe("10.1.1.1");
  });

  test("from a trusted proxy: the rightmost hop that is not a trusted proxy", () => {
    expect(clientOf(proxies, "10.1.1.1", "203.0.113.9")).toBe("203.0.113.9");
    // A client's own X-Forwarded-For stays on the left: it cannot pick its address.
    expect(clientOf(proxies, "10.1.1.1", "198.51.100.1, 203.0.113.9, 10.2.2.2")).toBe("203.0.113.9");
    expect(clientOf(proxies, "::1", "[2001:db8::7]:4711, 192.0.2.5:8080")).toBe("192.0.2.5");
    expect(clientOf(proxies, "::ffff:10.0.0.1", "10.3.3.3, 10.2.2.2")).toBe("10.3.3.3"); // every hop trusted: the first
  });

  test("CIDRs are parsed strictly", () => {
    expect(parseCidr("10.0.0.0/8")).toEqual({ ip: { v: 4, bytes: [10, 0, 0, 0] }, prefix: 8 });
    expect(parseCidr("2001:db8::/32")?.prefix).toBe(32);
    expect(parseCidr("192.0.2.1")).toEqual({ ip: { v: 4, bytes: [192, 0, 2, 1] }, prefix: 32 });
    for (const bad of ["10.0.0.0/33", "example.com", "10.0.0.0/8/1", "10.0.0.0/x", "10.0.0.1/8", ""])
      expect(parseCidr(bad)).toBeNull();
    expect(() => trustList(["10.0.0.0/8", "proxy.local"])).toThrow("proxy.local");
  });

  test("a 6to4 or NAT64 address is not the IPv4 address it carries, for trust", () => {
    const proxies = trustList(["10.0.0.1"]);
    expect(clientOf(proxies, "2002:a00:1::1", "203.0.113.9")).toBe("2002:a00:1::1");
    expect(clientOf(proxies, "64:ff9b::a00:1", "203.0.113.9")).toBe("64:ff9b::a00:1");
    expect(clientOf(proxies, "::ffff:10.0.0.1", "203.0.113.9")).toBe("203.0.113.9");
  });
});
