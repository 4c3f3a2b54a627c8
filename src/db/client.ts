/** postgres.js client factory. The URL may carry a password: never log it (use describeDatabase). */
import postgres from "postgres";

export type Sql = postgres.Sql;

export function createSql(
  url: string,
  // biome-ignore lint/suspicious/noExplicitAny: postgres.js's socket factory option (db/export-socket.ts)
  opts: { max: number; name: string; socket?: (options: any) => Promise<unknown> },
): Sql {
  const target = postgresJsTarget(url);
  return postgres(target.url, {
    host: target.host,
    max: opts.max,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    connect_timeout: 10,
    // postgres.js's default reconnect delay grows to 20 s across the pool; after an outage the
    // writer would sit idle that long. Cap it at 1 s (the writer has its own backoff).
    backoff: (retries: number) => Math.min(0.1 * 2 ** retries, 1),
    onnotice: () => {},
    connection: { application_name: `telemetry-${opts.name}` },
    ...(opts.socket ? { socket: opts.socket } : {}),
  } as postgres.Options<Record<string, postgres.PostgresType>>);
}

/** Host and database of a URL without credentials, for logs. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    const host = u.searchParams.get("host") ?? u.host;
    return `${host}${u.pathname}`;
  } catch {
    return "(unparseable URL)";
  }
}

/**
 * Unix sockets are written the libpq way, `postgres://user@localhost/db?host=/socket/dir`;
 * postgres.js 3.4 ignores that `host` parameter (it would connect to TCP localhost and send `host`
 * as a server setting), so it is lifted into the `host` option postgres.js does understand.
 */
export function postgresJsTarget(url: string): { url: string; host?: string } {
  const parsed = new URL(url);
  const host = parsed.searchParams.get("host");
  if (!host) return { url };
  parsed.searchParams.delete("host");
  return { url: parsed.toString(), host };
}
