/**
 * Which client a request comes from, for per-address limits. Pure (address parsing and CIDR
 * matching are core/address.ts's, shared with the webhook target policy). The socket's peer,
 * unless it is a trusted proxy: then the rightmost address of X-Forwarded-For that is not a
 * trusted proxy (each proxy appends the address it saw, so only the part right of the first
 * untrusted hop is vouched for).
 */
import { type Cidr, inCidr, parseCidr, parseIp, withoutIpv4Mapping } from "./address.ts";

export type TrustList = readonly Cidr[];

/** The trusted proxies' CIDRs (a bare address is a /32 or /128); null when there are none. */
export function trustList(cidrs: readonly string[]): TrustList | null {
  if (cidrs.length === 0) return null;
  return cidrs.map((text) => {
    const c = parseCidr(text);
    if (!c) throw new Error(`not an IP address or CIDR: ${JSON.stringify(text)}`);
    return c;
  });
}

/** An IPv4-mapped IPv6 peer (::ffff:10.0.0.1, as a dual-stack socket reports IPv4) counts as its IPv4 address. */
function trusted(list: TrustList, address: string): boolean {
  const ip = parseIp(address);
  return ip !== null && list.some((c) => inCidr(withoutIpv4Mapping(ip), c));
}

/** An X-Forwarded-For hop without brackets or port ("[::1]:80", "192.0.2.1:5000"). */
function bare(hop: string): string {
  const h = hop.trim();
  return /^\[([^\]]+)\](?::\d+)?$/.exec(h)?.[1] ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(h)?.[1] ?? h;
}

export function clientOf(proxies: TrustList | null, peer: string, forwardedFor: string | undefined): string {
  if (!proxies || !forwardedFor || !trusted(proxies, peer)) return peer;
  const hops = forwardedFor.split(",").map(bare).filter(Boolean).slice(-32);
  for (let i = hops.length - 1; i >= 0; i--) if (!trusted(proxies, hops[i]!)) return hops[i]!;
  return hops[0] ?? peer;
}
