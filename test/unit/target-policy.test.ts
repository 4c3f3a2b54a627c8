/** Address classification over every spelling a URL accepts, the CIDR matcher, the allow list, and the delivery error categories. */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { classifyIp, inCidr, parseCidr, parseIp, urlHost } from "../../src/core/address.ts";
import { errorCategory, publicDeliveryError } from "../../src/core/delivery-error.ts";
import { checkResolved, checkUrlTarget, parseAllowList, STRICT_POLICY } from "../../src/core/target-policy.ts";
import { loadConfig } from "../../src/config/load.ts";

const kindOf = (url: string) => {
  const v = checkUrlTarget(STRICT_POLICY, url);
  return v.ok ? null : v.kind;
};

describe("a channel URL's host, in every spelling", () => {
  test.each([
    "http://127.0.0.1/hook",
    "http://2130706433/hook", // decimal
    "http://0177.0.0.1/hook", // octal
    "http://0x7f.1/hook", // hex, short
    "http://0x7f000001/hook",
    "http://0x7F.0.0.1/hook",
    "http://127.1/hook", // short form
    "http://127.0.1/hook",
    "http://127.0.0.1./hook", // trailing dot
    "http://127.255.255.254:8080/hook",
    "http://%31%32%37.0.0.1/hook", // percent-encoded
    "http://\uff11\uff12\uff17.0.0.1/hook", // full-width digits
    "http://evil.example@127.0.0.1/hook", // user info is not the host
    "https://127.0.0.1#@evil.example/",
    "http://[::1]/hook",
    "http://[0:0:0:0:0:0:0:1]/hook",
    "http://[::ffff:127.0.0.1]/hook", // IPv4-mapped
    "http://[::ffff:7f00:1]/hook",
    "http://[0:0:0:0:0:ffff:7f00:1]/hook",
    "http://[64:ff9b::127.0.0.1]/hook", // NAT64
    "http://[64:ff9b:1::7f00:1]/hook",
    "http://[2002:7f00:1::]/hook", // 6to4
  ])("%s is loopback", (url) => {
    expect(kindOf(url)).toBe("loopback");
  });

  test.each([
    ["http://10.0.0.1/", "private"],
    ["http://167772161/", "private"], // 10.0.0.1 in decimal
    ["http://012.0.0.1/", "private"],
    ["http://172.16.0.1/", "private"],
    ["http://172.31.255.255/", "private"],
    ["http://192.168.1.1/", "private"],
    ["http://0xc0.0xa8.1.1/", "private"],
    ["http://169.254.169.254/latest/meta-data/", "link_local"],
    ["http://0xa9fea9fe/", "link_local"],
    ["http://2852039166/", "link_local"],
    ["http://[::ffff:169.254.169.254]/", "link_local"],
    ["http://[::ffff:a9fe:a9fe]/", "link_local"],
    ["http://100.64.0.1/", "cgnat"],
    ["http://100.127.255.255/", "cgnat"],
    ["http://0.0.0.0/", "unspecified"],
    ["http://0/", "unspecified"],
    ["http://0.1.2.3/", "unspecified"],
    ["http://[::]/", "unspecified"],
    ["http://224.0.0.1/", "multicast"],
    ["http://239.255.255.250/", "multicast"],
    ["http://[ff02::1]/", "multicast"],
    ["http://255.255.255.255/", "broadcast"],
    ["http://4294967295/", "broadcast"],
    ["http://240.0.0.1/", "reserved"],
    ["http://192.0.0.8/", "reserved"],
    ["http://198.18.0.1/", "reserved"],
    ["http://192.0.2.10/", "documentation"],
    ["http://198.51.100.1/", "documentation"],
    ["http://203.0.113.9/", "documentation"],
    ["http://[2001:db8::1]/", "documentation"],
    ["http://[fc00::1]/", "private"],
    ["http://[fd12:3456::1]/", "private"],
    ["http://[fe80::1]/", "link_local"],
    ["http://[febf::1]/", "link_local"],
    ["http://[::127.0.0.1]/", "reserved"], // IPv4-compatible (deprecated)
    ["http://[::8.8.8.8]/", "reserved"],
    ["http://[100::1]/", "reserved"],
    ["http://[2001::1]/", "reserved"], // Teredo
    ["http://[4000::1]/", "reserved"], // outside 2000::/3
  ])("%s is %s", (url, kind) => {
    expect(kindOf(url)).toBe(kind as never);
  });

  test.each([
    "https://8.8.8.8/",
    "http://134744072/", // 8.8.8.8
    "http://172.32.0.1/",
    "http://100.128.0.1/",
    "http://169.255.0.1/",
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/", // mapped, to a public address
    "http://[64:ff9b::8.8.8.8]/",
    "https://hooks.example.com/alerts",
    "http://localhost:8080/", // a name: checked on what it resolves to, when delivering
  ])("%s is allowed when saved", (url) => {
    expect(checkUrlTarget(STRICT_POLICY, url)).toEqual({ ok: true });
  });

  test("any 32-bit number, in decimal, hex or octal, classifies as its dotted quad", () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), (n) => {
        const dotted = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
        const want = classifyIp(parseIp(dotted.join("."))!);
        expect(kindOf(`http://${n}/`)).toBe(want);
        expect(kindOf(`http://0x${n.toString(16)}/`)).toBe(want);
        expect(kindOf(`http://${dotted.map((b) => `0${b.toString(8)}`).join(".")}/`)).toBe(want);
        expect(kindOf(`http://[::ffff:${dotted.join(".")}]/`)).toBe(want);
      }),
      { numRuns: 2_000 },
    );
  });

  test("urlHost: lower case, no brackets, no trailing dot", () => {
    expect(urlHost("http://LOCALHOST./x")).toBe("localhost");
    expect(urlHost("http://[::FFFF:127.0.0.1]:80/")).toBe("::ffff:7f00:1");
    expect(urlHost("not a url")).toBeNull();
  });
});

describe("parsing and matching", () => {
  test.each([
    "1.2.3",
    "01.2.3.4",
    "256.1.1.1",
    "1.2.3.4.5",
    " 1.2.3.4",
    ":::1",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "::1%eth0",
    "12345::",
    "::1.2.3",
    "",
    "localhost",
    "[::1",
  ])("%p is not an address", (text) => {
    expect(parseIp(text)).toBeNull();
  });

  test("IPv6 forms", () => {
    expect(parseIp("::")!.bytes).toEqual(Array(16).fill(0));
    expect(parseIp("[::1]")!.bytes).toEqual([...Array(15).fill(0), 1]);
    expect(parseIp("1:2:3:4:5:6:7:8")!.bytes).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expect(parseIp("1::")!.bytes).toEqual([0, 1, ...Array(14).fill(0)]);
    expect(parseIp("::ffff:1.2.3.4")!.bytes.slice(10)).toEqual([255, 255, 1, 2, 3, 4]);
    expect(parseIp("::ffff:1.2.3.4")).toEqual(parseIp("::ffff:102:304"));
  });

  test("CIDR ranges: prefixes, boundaries, families", () => {
    const r = parseCidr("172.16.0.0/12")!;
    expect(inCidr(parseIp("172.16.0.0")!, r)).toBe(true);
    expect(inCidr(parseIp("172.31.255.255")!, r)).toBe(true);
    expect(inCidr(parseIp("172.32.0.0")!, r)).toBe(false);
    expect(inCidr(parseIp("172.15.255.255")!, r)).toBe(false);
    expect(inCidr(parseIp("::ffff:172.16.0.1")!, r)).toBe(false); // another family; the policy looks inside
    expect(inCidr(parseIp("fe80::1")!, parseCidr("fe80::/10")!)).toBe(true);
    expect(inCidr(parseIp("fec0::1")!, parseCidr("fe80::/10")!)).toBe(false);
    expect(inCidr(parseIp("9.9.9.9")!, parseCidr("0.0.0.0/0")!)).toBe(true);
    expect(parseCidr("1.2.3.4")).toEqual({ ip: parseIp("1.2.3.4")!, prefix: 32 });
    expect(parseCidr("::1")!.prefix).toBe(128);
    for (const bad of [
      "10.0.0.1/8",
      "10.0.0.0/33",
      "::/129",
      "10.0.0.0/",
      "10.0.0.0/8/8",
      "10.0.0.0/-1",
      "x/8",
      "fe80::1/10",
    ])
      expect(parseCidr(bad)).toBeNull();
  });
});

describe("the operator's allow list", () => {
  const { policy, problems } = parseAllowList(" 127.0.0.1 , Hub.Internal., 10.1.0.0/16,[::1], fd00::/8");

  test("hosts, addresses and ranges", () => {
    expect(problems).toEqual([]);
    for (const url of [
      "http://127.0.0.1:9/",
      "http://2130706433:9/",
      "http://[::ffff:127.0.0.1]/",
      "http://10.1.200.3/",
      "http://[::1]/",
      "http://[fd00::5]/",
    ])
      expect(checkUrlTarget(policy, url)).toEqual({ ok: true });
    expect(checkUrlTarget(policy, "http://127.0.0.2/")).toMatchObject({ ok: false, kind: "loopback" });
    expect(checkUrlTarget(policy, "http://10.2.0.1/")).toMatchObject({ ok: false, kind: "private" });
    // a listed name may resolve to anything; another name resolving there may not
    expect(checkResolved(policy, "hub.internal", "192.168.7.7")).toEqual({ ok: true });
    expect(checkResolved(policy, "other.internal", "192.168.7.7")).toMatchObject({
      ok: false,
      host: "other.internal",
      address: "192.168.7.7",
      kind: "private",
    });
    expect(checkResolved(policy, "other.internal", "10.1.0.9")).toEqual({ ok: true });
    expect(checkResolved(STRICT_POLICY, "x.example", "not-an-address")).toMatchObject({ ok: false, kind: "reserved" });
    expect(checkResolved(STRICT_POLICY, "x.example", "93.184.216.34")).toEqual({ ok: true });
  });

  test("a bad entry is named; the setting fails config loading", () => {
    const bad = parseAllowList("10.0.0.1/8,999.1.1.1,::1/129,a b,http://x,ok.example");
    expect(bad.problems).toHaveLength(5);
    expect(bad.problems[0]).toContain('"10.0.0.1/8"');
    expect([...bad.policy.hosts]).toEqual(["ok.example"]);
    expect(() => loadConfig({}, { TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1,10.0.0.1/8" })).toThrow(
      /TELEMETRY_WEBHOOK_ALLOW: "10.0.0.1\/8" is not a host name/,
    );
    const config = loadConfig({}, { TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1, hub.internal" });
    expect(checkUrlTarget(config.webhookAllow, "http://127.1/")).toEqual({ ok: true });
    expect(JSON.stringify(config.webhookAllow)).toBe('"127.0.0.1,hub.internal"');
    expect(checkUrlTarget(loadConfig({}, {}).webhookAllow, "http://127.1/")).toMatchObject({ ok: false });
  });
});

describe("delivery errors as tenants see them", () => {
  test.each([
    [{ code: "BLOCKED_ADDRESS" }, "blocked_address"],
    [{ name: "TimeoutError" }, "timeout"],
    [{ code: "ETIMEDOUT" }, "timeout"],
    [{ code: "ECONNREFUSED" }, "refused"],
    [{ code: "ENOTFOUND", name: "DNSException" }, "dns"],
    [{ code: "ECONNREFUSED", name: "DNSException" }, "dns"],
    [{ code: "EAI_AGAIN" }, "dns"],
    [{ code: "DEPTH_ZERO_SELF_SIGNED_CERT" }, "tls"],
    [{ code: "ERR_TLS_CERT_ALTNAME_INVALID" }, "tls"],
    [{ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" }, "tls"],
    [{ code: "HPE_INVALID_CONSTANT" }, "network"],
    [{ code: "ECONNRESET" }, "network"],
    [{ code: "EHOSTUNREACH" }, "network"],
    [{ code: "MISSING_SECRET" }, "missing_secret"],
    [{}, "network"],
  ])("%j is %s", (err, category) => {
    expect(errorCategory(err)).toBe(category as never);
  });

  test("stored text from before the categories is mapped, never shown", () => {
    expect(publicDeliveryError(null)).toBeNull();
    expect(publicDeliveryError("http_503")).toBe("http_503");
    expect(publicDeliveryError("HTTP 500")).toBe("http_500");
    expect(publicDeliveryError("ECONNREFUSED: Unable to connect. Is the computer able to access the url?")).toBe(
      "refused",
    );
    expect(publicDeliveryError("timed out after 10000 ms")).toBe("timeout");
    expect(publicDeliveryError("Malformed_HTTP_Response: The response was malformed")).toBe("network");
    expect(publicDeliveryError("ConnectionRefused: Unable to connect")).toBe("refused");
    expect(publicDeliveryError("channel disabled")).toBe("channel_disabled");
    expect(publicDeliveryError("blocked_address")).toBe("blocked_address");
  });
});
