/** postgres.js client factory. The URL may carry a password: never log it (use describeDatabase). */
import postgres from "postgres";

export type Sql = postgres.Sql;

export function createSql(url: string, opts: { max: number; name: string }): Sql {
  return postgres(url, {
    max: opts.max,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: `telemetry-${opts.name}` },
  });
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
