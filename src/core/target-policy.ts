/**
 * Which delivery targets a tenant's channel may reach. By default only public unicast addresses:
 * loopback, private, link-local, CGNAT, multicast, unspecified, broadcast, documentation and
 * reserved ranges are refused (see address.ts), whatever the spelling. The operator's allow list
 * (TELEMETRY_WEBHOOK_ALLOW) names hosts and CIDR ranges that are allowed anyway. A URL is checked
 * when a channel is saved (an IP literal host), and every address its host resolves to is checked
 * again just before connecting (a name can resolve to anything, and differently each time).
 */
import {
  classifyIp,
  embeddedIpv4,
  inCidr,
  parseCidr,
  parseIp,
  urlHost,
  type AddressClass,
  type Cidr,
  type Ip,
} from "./address.ts";

export interface TargetPolicy {
  /** Host names allowed whatever they resolve to (lower case, no trailing dot). */
  readonly hosts: ReadonlySet<string>;
  readonly ranges: readonly Cidr[];
}

export const STRICT_POLICY: TargetPolicy = { hosts: new Set(), ranges: [] };

export type Verdict = { ok: true } | { ok: false; host: string; address: string; kind: AddressClass };

const HOST_NAME =
  /^(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

/** Comma-separated host names, addresses and CIDR ranges; problems name the bad entries. */
export function parseAllowList(text: string): { policy: TargetPolicy; problems: string[] } {
  const hosts = new Set<string>();
  const ranges: Cidr[] = [];
  const problems: string[] = [];
  for (const entry of text
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean)) {
    const range = parseCidr(entry.replace(/^\[([^\]]*)\]/, "$1"));
    if (range) ranges.push(range);
    else if (!/^[\d.]+(\/\d+)?$/.test(entry) && !entry.includes(":") && !entry.includes("/") && HOST_NAME.test(entry))
      hosts.add(entry.toLowerCase().replace(/\.$/, ""));
    else
      problems.push(
        `${JSON.stringify(entry)} is not a host name, an IP address or a CIDR range with its host bits zero`,
      );
  }
  return { policy: { hosts, ranges }, problems };
}

function allowedIp(policy: TargetPolicy, ip: Ip): boolean {
  const inner = embeddedIpv4(ip);
  return policy.ranges.some((r) => inCidr(ip, r) || (inner !== null && inCidr(inner, r)));
}

function verdict(policy: TargetPolicy, host: string, ip: Ip, address: string): Verdict {
  if (allowedIp(policy, ip)) return { ok: true };
  const kind = classifyIp(ip);
  return kind === null ? { ok: true } : { ok: false, host, address, kind };
}

/**
 * When a channel is saved: a URL whose host is an IP address (in any spelling `new URL` accepts)
 * must be allowed; a host name is checked when delivering, on what it resolves to.
 */
export function checkUrlTarget(policy: TargetPolicy, url: string): Verdict {
  const host = urlHost(url);
  if (host === null || policy.hosts.has(host)) return { ok: true }; // an unparseable URL is the schema's to refuse
  const ip = parseIp(host);
  return ip === null ? { ok: true } : verdict(policy, host, ip, host);
}

/** When connecting: `address` is what `host` (a URL's host, see urlHost) resolved to. */
export function checkResolved(policy: TargetPolicy, host: string, address: string): Verdict {
  if (policy.hosts.has(host)) return { ok: true };
  const ip = parseIp(address);
  if (ip === null) return { ok: false, host, address, kind: "reserved" };
  return verdict(policy, host, ip, address);
}

const KIND_TEXT: Record<AddressClass, string> = {
  loopback: "a loopback address",
  private: "a private address",
  link_local: "a link-local address",
  cgnat: "a shared (CGNAT) address",
  multicast: "a multicast address",
  unspecified: "an unspecified address",
  broadcast: "the broadcast address",
  documentation: "a documentation address",
  reserved: "a reserved address",
};

export function blockedMessage(v: Extract<Verdict, { ok: false }>): string {
  const what = v.host === v.address ? `host ${v.address}` : `host ${v.host} (${v.address})`;
  return `the URL's ${what} is ${KIND_TEXT[v.kind]}; channels may only reach public addresses unless the server's operator allows the target (TELEMETRY_WEBHOOK_ALLOW)`;
}
