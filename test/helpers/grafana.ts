/**
 * What Grafana does to a PostgreSQL panel's rawSql before the database sees it, in the same order,
 * so the dashboard's queries can be run without Grafana:
 *
 * 1. the frontend's template variables (templateSrv.replace with the SQL datasource's
 *    interpolateVariable): `$var`, `${var}`, `[[var]]`; a multi-value or include-all variable is
 *    each value quoted (`'a','b'`), a single value is the value with `'` doubled; `${var:sqlstring}`
 *    quotes every value; `$__interval` / `$__interval_ms` are the panel's interval;
 * 2. the backend's global substitutions (sqleng.Interpolate): `$__interval_ms`, `$__interval`
 *    (gtime.FormatInterval), `$__unixEpochFrom()`, `$__unixEpochTo()`;
 * 3. the PostgreSQL macros (grafana-postgresql-datasource/macros.go): `$__timeFilter(c)` →
 *    `c BETWEEN '<from>' AND '<to>'` (RFC 3339, UTC, fraction without trailing zeros),
 *    `$__timeFrom()`, `$__timeTo()`, `$__timeGroup(c, 1m)` → `floor(extract(epoch from c)/60)*60`
 *    or with TimescaleDB `time_bucket('60.000s',c)`, `$__timeGroupAlias` (… AS "time"), `$__time`,
 *    `$__timeEpoch`, `$__unixEpochFilter`; any other macro is an error, as in Grafana.
 */
export interface GrafanaContext {
  from: Date;
  to: Date;
  intervalMs: number;
  timescaledb: boolean;
  /** Template variables; an array is a multi-value (or All) selection. */
  vars: Record<string, string | string[]>;
}

const quote = (v: string) => `'${v.replaceAll("'", "''")}'`;

/** gtime.FormatInterval */
export function formatInterval(ms: number): string {
  const units: [number, string][] = [
    [365 * 86_400_000, "y"],
    [86_400_000, "d"],
    [3_600_000, "h"],
    [60_000, "m"],
    [1_000, "s"],
    [1, "ms"],
  ];
  for (const [size, unit] of units) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return "1ms";
}

/** gtime.ParseInterval for the units a dashboard uses, in seconds. */
function intervalSeconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.replace(/^'|'$/g, ""));
  if (!m) throw new Error(`error parsing interval ${text}`);
  const scale = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2] as "s"];
  return Number(m[1]) * scale;
}

/** Go's time.RFC3339Nano of a UTC time: no trailing zeros in the fraction, none at all when whole. */
export function rfc3339Nano(d: Date): string {
  return d.toISOString().replace(/\.(\d*?)0+Z$/, (_, f: string) => (f ? `.${f}Z` : "Z"));
}

function variables(sql: string, ctx: GrafanaContext): string {
  const builtins: Record<string, string> = {
    __interval: formatInterval(ctx.intervalMs),
    __interval_ms: String(ctx.intervalMs),
  };
  const re = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}/g;
  return sql.replace(re, (match, plain?: string, br?: string, brFmt?: string, braced?: string, fmt?: string) => {
    const name = plain ?? br ?? braced!;
    const format = fmt ?? brFmt;
    if (name in builtins) return builtins[name]!;
    const value = ctx.vars[name];
    if (value === undefined) return match; // not a variable: a macro, left for the backend
    if (format === "sqlstring") return (Array.isArray(value) ? value : [value]).map(quote).join(",");
    if (format) throw new Error(`format ${format} is not modelled here`);
    return Array.isArray(value) ? value.map(quote).join(",") : value.replaceAll("'", "''");
  });
}

function backendGlobals(sql: string, ctx: GrafanaContext): string {
  return sql
    .replaceAll("$__interval_ms", String(ctx.intervalMs))
    .replaceAll("$__interval", formatInterval(ctx.intervalMs))
    .replaceAll("$__unixEpochFrom()", String(Math.floor(ctx.from.getTime() / 1000)))
    .replaceAll("$__unixEpochTo()", String(Math.floor(ctx.to.getTime() / 1000)));
}

function macro(name: string, args: string[], ctx: GrafanaContext): string {
  const need = () => {
    if (!args[0]) throw new Error(`missing time column argument for macro ${name}`);
    return args[0];
  };
  const from = rfc3339Nano(ctx.from);
  const to = rfc3339Nano(ctx.to);
  switch (name) {
    case "__time":
      return `${need()} AS "time"`;
    case "__timeEpoch":
      return `extract(epoch from ${need()}) as "time"`;
    case "__timeFilter":
      return `${need()} BETWEEN '${from}' AND '${to}'`;
    case "__timeFrom":
      return `'${from}'`;
    case "__timeTo":
      return `'${to}'`;
    case "__timeGroup": {
      if (args.length < 2) throw new Error(`macro ${name} needs time column and interval and optional fill value`);
      const s = intervalSeconds(args[1]!);
      return ctx.timescaledb
        ? `time_bucket('${s.toFixed(3)}s',${args[0]})`
        : `floor(extract(epoch from ${args[0]})/${s})*${s}`;
    }
    case "__timeGroupAlias":
      return `${macro("__timeGroup", args, ctx)} AS "time"`;
    case "__unixEpochFilter": {
      const c = need();
      return `${c} >= ${Math.floor(ctx.from.getTime() / 1000)} AND ${c} <= ${Math.floor(ctx.to.getTime() / 1000)}`;
    }
    default:
      throw new Error(`unknown macro "${name}"`);
  }
}

function macros(sql: string, ctx: GrafanaContext): string {
  return sql.replace(/\$([_a-zA-Z0-9]+)\(([^)]*)\)/g, (whole, name: string, argText: string, offset: number) => {
    // Grafana's pre-5.3 compatibility: $__timeGroup(...) directly followed by ',' gets AS "time".
    const effective = name === "__timeGroup" && sql[offset + whole.length] === "," ? "__timeGroupAlias" : name;
    return macro(
      effective,
      argText.split(",").map((a) => a.trim()),
      ctx,
    );
  });
}

/** rawSql as the PostgreSQL datasource would send it. */
export function expandGrafanaSql(rawSql: string, ctx: GrafanaContext): string {
  return macros(backendGlobals(variables(rawSql, ctx), ctx), ctx);
}
