/**
 * Which client a request comes from, for per-address limits. Pure (node:net's BlockList and
 * isIP only parse). The socket's peer, unless it is a trusted proxy: then the rightmost address
 * of X-Forwarded-For that is not a trusted proxy (each proxy appends the address it saw, so only
 * the part right of the first untrusted hop is vouched for).
 */
import { BlockList, isIP } from "node:net";

/** "10.0.0.1" or "10.0.0.0/8", IPv4 or IPv6; null when it is neither. */
export function parseCidr(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | null {
  const [address = "", prefixText, extra] = text.trim().split("/");
  const v = isIP(address);
  if (v === 0 || extra !== undefined) return null;
  const max = v === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
  if (prefix < 0 || prefix > max) return null;
  return { address, prefix, family: v === 4 ? "ipv4" : "ipv6" };
}

export function trustList(cidrs: readonly string[]): BlockList | null {
  if (cidrs.length === 0) return null;
  const list = new BlockList();
  for (const text of cidrs) {
    const c = parseCidr(text);
    if (!c) throw new Error(`not an IP address or CIDR: ${JSON.stringify(text)}`);
    list.addSubnet(c.address, c.prefix, c.family);
  }
  return list;
}

function trusted(list: BlockList, address: string): boolean {
  const v = isIP(address);
  return v !== 0 && list.check(address, v === 4 ? "ipv4" : "ipv6");
}

/** An X-Forwarded-For hop without brackets or port ("[::1]:80", "192.0.2.1:5000"). */
function bare(hop: string): string {
  const h = hop.trim();
  return /^\[([^\]]+)\](?::\d+)?$/.exec(h)?.[1] ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(h)?.[1] ?? h;
}

export function clientOf(proxies: BlockList | null, peer: string, forwardedFor: string | undefined): string {
  if (!proxies || !forwardedFor || !trusted(proxies, peer)) return peer;
  const hops = forwardedFor.split(",").map(bare).filter(Boolean).slice(-32);
  for (let i = hops.length - 1; i >= 0; i--) if (!trusted(proxies, hops[i]!)) return hops[i]!;
  return hops[0] ?? peer;
}
