/**
 * IP addresses and CIDR ranges, pure: parsing (canonical text forms only: what WHATWG URL leaves
 * of a host, and what the resolver returns), prefix matching, and which special-purpose range an
 * address is in (IANA IPv4/IPv6 special-purpose registries, multicast and the reserved blocks).
 * IPv4 spellings such as 2130706433, 0177.0.0.1, 0x7f.1 or 127.1 are normalised by `new URL`
 * before they get here; `hostAddress` does exactly that.
 */

export interface Ip {
  readonly v: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: readonly number[];
}

export interface Cidr {
  readonly ip: Ip;
  readonly prefix: number;
}

/** Why an address is not a public unicast one. */
export type AddressClass =
  | "loopback"
  | "private"
  | "link_local"
  | "cgnat"
  | "multicast"
  | "unspecified"
  | "broadcast"
  | "documentation"
  | "reserved";

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function parseIpv4(text: string): Ip | null {
  if (!IPV4.test(text)) return null;
  return { v: 4, bytes: text.split(".").map(Number) };
}

function parseIpv6(text: string): Ip | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length > 45) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (const [i, piece] of pieces.entries()) {
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (!v4) return null;
        out.push((v4.bytes[0]! << 8) | v4.bytes[1]!, (v4.bytes[2]! << 8) | v4.bytes[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<number>(missing).fill(0), ...tail];
  return { v: 6, bytes: all.flatMap((g) => [g >> 8, g & 0xff]) };
}

/** An IPv4 dotted quad or an IPv6 address (optionally in brackets); anything else is null. */
export function parseIp(text: string): Ip | null {
  const t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  return t.includes(":") ? parseIpv6(t) : parseIpv4(t);
}

/** `a.b.c.d/n`, `x::/n`, or a single address (a /32 or /128). Host bits must be zero. */
export function parseCidr(text: string): Cidr | null {
  const [addr, bits, ...rest] = text.trim().split("/");
  if (rest.length > 0 || addr === undefined) return null;
  const ip = parseIp(addr);
  if (!ip) return null;
  const max = ip.bytes.length * 8;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return null;
  const prefix = bits === undefined ? max : Number(bits);
  if (prefix > max) return null;
  // host bits set (10.0.0.1/8) is a typo more often than not
  return sameBits(ip.bytes, masked(ip.bytes, prefix), max) ? { ip, prefix } : null;
}

function masked(bytes: readonly number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
}

function sameBits(a: readonly number[], b: readonly number[], bits: number): boolean {
  for (let i = 0; i * 8 < bits; i++) {
    const keep = Math.min(8, bits - i * 8);
    const mask = (0xff << (8 - keep)) & 0xff;
    if ((a[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}

export function inCidr(ip: Ip, cidr: Cidr): boolean {
  return ip.v === cidr.ip.v && sameBits(ip.bytes, cidr.ip.bytes, cidr.prefix);
}

/** The IPv4 address an IPv6 form carries to: IPv4-mapped, NAT64 (well-known and local-use), 6to4. */
export function embeddedIpv4(ip: Ip): Ip | null {
  if (ip.v !== 6) return null;
  const b = ip.bytes;
  if (inCidr(ip, MAPPED) || inCidr(ip, NAT64) || inCidr(ip, NAT64_LOCAL)) return { v: 4, bytes: b.slice(12) };
  if (inCidr(ip, SIX_TO_FOUR)) return { v: 4, bytes: b.slice(2, 6) };
  return null;
}

/** ::ffff:a.b.c.d as a.b.c.d (only the mapped form: NAT64 and 6to4 addresses are other hosts); any other address as it is. */
export function withoutIpv4Mapping(ip: Ip): Ip {
  return ip.v === 6 && inCidr(ip, MAPPED) ? { v: 4, bytes: ip.bytes.slice(12) } : ip;
}

const cidr = (text: string): Cidr => parseCidr(text)!;
const MAPPED = cidr("::ffff:0:0/96");
const NAT64 = cidr("64:ff9b::/96");
const NAT64_LOCAL = cidr("64:ff9b:1::/48");
const SIX_TO_FOUR = cidr("2002::/16");
const GLOBAL_UNICAST_V6 = cidr("2000::/3");

/** First match wins. */
const SPECIAL: readonly (readonly [Cidr, AddressClass])[] = (
  [
    ["0.0.0.0/8", "unspecified"],
    ["10.0.0.0/8", "private"],
    ["100.64.0.0/10", "cgnat"],
    ["127.0.0.0/8", "loopback"],
    ["169.254.0.0/16", "link_local"],
    ["172.16.0.0/12", "private"],
    ["192.0.0.0/24", "reserved"],
    ["192.0.2.0/24", "documentation"],
    ["192.88.99.0/24", "reserved"],
    ["192.168.0.0/16", "private"],
    ["198.18.0.0/15", "reserved"],
    ["198.51.100.0/24", "documentation"],
    ["203.0.113.0/24", "documentation"],
    ["224.0.0.0/4", "multicast"],
    ["255.255.255.255/32", "broadcast"],
    ["240.0.0.0/4", "reserved"],
    ["::/128", "unspecified"],
    ["::1/128", "loopback"],
    ["::/8", "reserved"],
    ["100::/64", "reserved"],
    ["2001:db8::/32", "documentation"],
    ["2001::/23", "reserved"],
    ["3fff::/20", "documentation"],
    ["fc00::/7", "private"],
    ["fec0::/10", "private"],
    ["fe80::/10", "link_local"],
    ["ff00::/8", "multicast"],
  ] as const
).map(([c, k]) => [cidr(c), k] as const);

/**
 * The special range an address is in, or null for a public unicast address. An IPv6 form that
 * reaches an IPv4 address (mapped, NAT64, 6to4) is judged by that address; other IPv6 outside
 * 2000::/3 is reserved.
 */
export function classifyIp(ip: Ip): AddressClass | null {
  const inner = embeddedIpv4(ip);
  if (inner) return classifyIp(inner);
  for (const [range, kind] of SPECIAL) if (inCidr(ip, range)) return kind;
  if (ip.v === 6 && !inCidr(ip, GLOBAL_UNICAST_V6)) return "reserved";
  return null;
}

/** The host of a URL as WHATWG URL normalises it, lower case, without brackets or a trailing dot. */
export function urlHost(url: string): string | null {
  try {
    const host = new URL(url).hostname.toLowerCase();
    const bare = host.startsWith("[") ? host.slice(1, -1) : host;
    return bare.endsWith(".") ? bare.slice(0, -1) : bare;
  } catch {
    return null;
  }
}
