/**
 * Where InfluxDB clients carry the key (a KeyExtractor for requireTenant):
 *   `Authorization: Token <key>` (InfluxDB 2 and 3 clients, Telegraf's influxdb_v2) or `Bearer <key>`;
 *   `Authorization: Basic base64(user:key)` (InfluxDB 1 clients with a username and password);
 *   the `p` query parameter (InfluxDB 1's `?u=user&p=key`). The user name is not checked: the key
 *   alone names the tenant. Query strings are never logged (http/app.ts logs fixed fields only).
 */
import type { Context } from "hono";
import type { KeyExtractor } from "../../http/auth.ts";
import { HttpError } from "../../http/errors.ts";

const missing = (why: string) =>
  new HttpError(401, "unauthenticated", why, undefined, { "WWW-Authenticate": 'Token realm="telemetry"' });

function basicPassword(encoded: string): string | null {
  const text = Buffer.from(encoded, "base64").toString("utf8");
  const colon = text.indexOf(":");
  return colon < 0 ? null : text.slice(colon + 1);
}

export const influxKey: KeyExtractor = (c: Context) => {
  const header = c.req.header("authorization");
  if (header) {
    const m = /^(Token|Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
    if (!m) throw missing("Authorization header must be 'Token <api key>', 'Bearer <api key>' or Basic");
    const key = m[1]!.toLowerCase() === "basic" ? basicPassword(m[2]!) : m[2]!;
    if (!key) throw missing("Basic credentials must be user:password, the password being the api key");
    return key;
  }
  const p = c.req.query("p");
  if (p) return p;
  throw missing("missing credentials: send Authorization: Token <api key> (or the api key as the password)");
};
