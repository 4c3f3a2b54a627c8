/**
 * One webhook POST to a vetted address. The host is resolved here (every address it has), each
 * address is checked against the target policy, and the connection goes to a checked address
 * (node:http's `lookup` hook: no second resolution between the check and the connect, so DNS
 * rebinding gains nothing). An IP literal host is checked as it is. Redirects are never followed
 * (a 3xx is the answer), the response body is never read, and the connection is not reused.
 */
import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { parseIp, urlHost } from "../core/address.ts";
import { checkResolved, type TargetPolicy, type Verdict } from "../core/target-policy.ts";

export class BlockedAddressError extends Error {
  override readonly name = "BlockedAddressError";
  readonly code = "BLOCKED_ADDRESS";
  constructor(readonly verdict: Extract<Verdict, { ok: false }>) {
    super(`${verdict.host} -> ${verdict.address} is refused by the target policy (${verdict.kind})`);
  }
}

export interface PostOptions {
  policy: TargetPolicy;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** A lookup that answers only with addresses the policy allows (all of them must be). */
function vettedLookup(policy: TargetPolicy, host: string): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { all: true, family: options.family ?? 0, hints: options.hints }, (err, addresses) => {
      if (err) return callback(err, "", 0);
      for (const a of addresses) {
        const v = checkResolved(policy, host, a.address);
        if (!v.ok) return callback(new BlockedAddressError(v), "", 0);
      }
      if (addresses.length === 0)
        return callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), "", 0);
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/** POSTs `body` to `url`; resolves with the response status, rejects with the error that ended it. */
export function postJson(
  url: string,
  headers: Record<string, string>,
  body: string,
  opts: PostOptions,
): Promise<number> {
  const u = new URL(url);
  const host = urlHost(url)!;
  const literal = parseIp(host) !== null;
  if (literal) {
    const v = checkResolved(opts.policy, host, host);
    if (!v.ok) return Promise.reject(new BlockedAddressError(v));
  }
  const secure = u.protocol === "https:";
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const auth =
    u.username || u.password ? `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` : undefined;
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | null, status?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve(status!);
    };
    const req = (secure ? https : http).request({
      method: "POST",
      hostname,
      port: u.port || (secure ? 443 : 80),
      path: `${u.pathname}${u.search}`,
      auth,
      headers: { ...headers, "Content-Length": String(Buffer.byteLength(body)), Connection: "close" },
      agent: false,
      ...(literal ? {} : { lookup: vettedLookup(opts.policy, host), servername: host }),
    });
    const timer = setTimeout(
      () => req.destroy(Object.assign(new Error(`timed out after ${opts.timeoutMs} ms`), { name: "TimeoutError" })),
      opts.timeoutMs,
    );
    const onAbort = () => req.destroy(Object.assign(new Error("aborted"), { name: "AbortError" }));
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("response", (res) => {
      finish(null, res.statusCode ?? 0);
      res.destroy();
    });
    req.on("error", (err) => finish(err));
    req.end(body);
  });
}
