/**
 * What a tenant is told about a failed delivery: a coarse category, never socket text. Which error
 * a connection attempt ended with (ECONNREFUSED, a parser error, a reset) tells a port scanner what
 * listens where; the raw detail goes to the server log only.
 */

export type DeliveryErrorCategory =
  | "timeout"
  | "refused"
  | "tls"
  | "dns"
  | "blocked_address"
  | "network"
  | "channel_disabled"
  | "missing_secret"
  | `http_${number}`;

/** Every category but http_<status>, for documentation and checks. */
export const DELIVERY_ERROR_CATEGORIES = [
  "timeout",
  "refused",
  "tls",
  "dns",
  "blocked_address",
  "network",
  "channel_disabled",
  "missing_secret",
] as const;

const DNS_CODES = new Set([
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EAI_NODATA",
  "EAI_NONAME",
  "ENODATA",
  "ESERVFAIL",
  "ENONAME",
]);
const TLS_CODE =
  /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|ERR_OSSL_|EPROTO$)/;

/** The category of an error thrown while sending (its `code` and `name` as Node and Bun set them). */
export function errorCategory(err: { code?: unknown; name?: unknown } | null | undefined): DeliveryErrorCategory {
  const code = typeof err?.code === "string" ? err.code : "";
  const name = typeof err?.name === "string" ? err.name : "";
  if (code === "BLOCKED_ADDRESS") return "blocked_address";
  if (code === "MISSING_SECRET") return "missing_secret";
  if (
    name === "TimeoutError" ||
    code === "ETIMEDOUT" ||
    code === "ESOCKETTIMEDOUT" ||
    code === "UND_ERR_CONNECT_TIMEOUT"
  )
    return "timeout";
  if (DNS_CODES.has(code) || name === "DNSException") return "dns";
  if (code === "ECONNREFUSED") return "refused";
  if (TLS_CODE.test(code)) return "tls";
  return "network";
}

export const httpCategory = (status: number): DeliveryErrorCategory => `http_${status}`;

const KNOWN = new Set<string>(DELIVERY_ERROR_CATEGORIES);

/**
 * A stored error as the API shows it: a category as is; text recorded before categories existed
 * is mapped to one, so no raw socket text leaves the server.
 */
export function publicDeliveryError(stored: string | null): string | null {
  if (stored === null || KNOWN.has(stored) || /^http_\d{3}$/.test(stored)) return stored;
  const status = /^HTTP (\d{3})$/.exec(stored);
  if (status) return `http_${status[1]}`;
  if (/^timed out|TimeoutError|ETIMEDOUT/i.test(stored)) return "timeout";
  if (/ECONNREFUSED|ConnectionRefused/.test(stored)) return "refused";
  if (/ENOTFOUND|EAI_AGAIN|getaddrinfo/.test(stored)) return "dns";
  if (/certificate|CERT_|ERR_TLS|SSL/i.test(stored)) return "tls";
  if (stored === "channel disabled") return "channel_disabled";
  if (stored === "hub channel has no API key") return "missing_secret";
  return "network";
}
