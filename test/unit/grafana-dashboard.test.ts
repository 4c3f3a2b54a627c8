/**
 * The Grafana files of deploy/grafana without Grafana: the dashboard is a valid model bound to the
 * provisioned datasource, and the test's macro expansion (test/helpers/grafana.ts) gives what
 * Grafana's PostgreSQL datasource gives (the cases of its macros_test.go).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { expandGrafanaSql, formatInterval, type GrafanaContext, rfc3339Nano } from "../helpers/grafana.ts";

const ROOT = resolve(import.meta.dir, "../../deploy/grafana");
const dashboard = JSON.parse(readFileSync(`${ROOT}/dashboards/telemetry-fleet.json`, "utf8"));
const datasources = Bun.YAML.parse(readFileSync(`${ROOT}/provisioning/datasources/telemetry.yaml`, "utf8")) as any;
const provider = Bun.YAML.parse(readFileSync(`${ROOT}/provisioning/dashboards/provider.yaml`, "utf8")) as any;

describe("dashboard model", () => {
  const panels: any[] = dashboard.panels;
  const ds = datasources.datasources[0];

  test("schema version, uid, title, time range, panels with unique ids and positions", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(typeof dashboard.title).toBe("string");
    expect(dashboard.time).toEqual({ from: expect.any(String), to: "now" });
    expect(panels.length).toBeGreaterThanOrEqual(6);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      expect(Number.isInteger(p.id)).toBe(true);
      expect(["timeseries", "table", "geomap", "stat"]).toContain(p.type);
      const { x, y, w, h } = p.gridPos;
      expect(x >= 0 && w > 0 && x + w <= 24 && y >= 0 && h > 0).toBe(true);
    }
  });

  test("every target has rawSql, a format, a unique refId, and the provisioned datasource's uid", () => {
    expect(ds.uid).toBe("telemetry-pg");
    for (const p of panels) {
      expect(p.datasource).toEqual({ type: ds.type, uid: ds.uid });
      expect(p.targets.length).toBeGreaterThan(0);
      expect(new Set(p.targets.map((t: any) => t.refId)).size).toBe(p.targets.length);
      for (const t of p.targets) {
        expect(t.rawSql.trim().length).toBeGreaterThan(0);
        expect(t.rawQuery).toBe(true);
        expect(["time_series", "table"]).toContain(t.format);
        expect(t.datasource).toEqual({ type: ds.type, uid: ds.uid });
      }
    }
    for (const v of dashboard.templating.list.filter((v: any) => v.type === "query"))
      expect(v.datasource).toEqual({ type: ds.type, uid: ds.uid });
  });

  test("every variable a query uses is defined; geomap layers read refIds that exist", () => {
    const defined = new Set(dashboard.templating.list.map((v: any) => v.name));
    const sqls = [
      ...panels.flatMap((p) => p.targets.map((t: any) => t.rawSql)),
      ...dashboard.templating.list.filter((v: any) => v.type === "query").map((v: any) => v.query),
    ];
    for (const sql of sqls) for (const m of sql.matchAll(/\$\{?([a-zA-Z]\w*)/g)) expect(defined.has(m[1]!)).toBe(true);
    for (const p of panels.filter((p) => p.type === "geomap"))
      for (const layer of p.options.layers)
        expect(p.targets.map((t: any) => t.refId)).toContain(layer.filterData.options);
  });

  test("provisioning: PostgreSQL datasource with the timescaledb switch; a file provider", () => {
    expect(datasources.apiVersion).toBe(1);
    expect(ds.type).toBe("grafana-postgresql-datasource");
    expect(ds.jsonData.timescaledb).toBe(false);
    expect(ds.secureJsonData.password).toMatch(/^\$__file\{/); // the password is never in the file
    expect(provider.providers[0]).toMatchObject({ type: "file", options: { path: expect.any(String) } });
  });
});

describe("macro expansion (cases of Grafana's macros_test.go)", () => {
  const from = new Date(Date.UTC(2018, 3, 12, 18, 0, 0));
  const ctx: GrafanaContext = {
    from,
    to: new Date(from.getTime() + 5 * 60_000),
    intervalMs: 600_000,
    timescaledb: false,
    vars: {},
  };
  const ts = { ...ctx, timescaledb: true };
  const cases: [GrafanaContext, string, string][] = [
    [ctx, "select $__time(time_column)", 'select time_column AS "time"'],
    [
      ctx,
      "WHERE $__timeFilter(time_column)",
      "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
    ],
    [ctx, "select $__timeFrom()", "select '2018-04-12T18:00:00Z'"],
    [ctx, "select $__timeTo()", "select '2018-04-12T18:05:00Z'"],
    [
      ctx,
      "SELECT $__timeGroup(time_column,'5m'), value",
      'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value',
    ],
    [
      ctx,
      "SELECT $__timeGroup(time_column,'5m') as time, value",
      "SELECT floor(extract(epoch from time_column)/300)*300 as time, value",
    ],
    [ctx, "$__timeGroupAlias(time_column , '5m')", 'floor(extract(epoch from time_column)/300)*300 AS "time"'],
    [ts, "GROUP BY $__timeGroup(time_column,'5m')", "GROUP BY time_bucket('300.000s',time_column)"],
    [ts, "GROUP BY $__timeGroup(time_column , '12d')", "GROUP BY time_bucket('1036800.000s',time_column)"],
    [ts, "GROUP BY $__timeGroup(time_column , '20ms')", "GROUP BY time_bucket('0.020s',time_column)"],
    [ctx, "select $__unixEpochFilter(time)", "select time >= 1523556000 AND time <= 1523556300"],
    [ctx, "SELECT $__interval", "SELECT 10m"],
    [ctx, "$__timeGroupAlias(ts, $__interval)", 'floor(extract(epoch from ts)/600)*600 AS "time"'],
  ];
  for (const [c, sql, expected] of cases)
    test(`${c.timescaledb ? "timescaledb: " : ""}${sql}`, () => expect(expandGrafanaSql(sql, c)).toBe(expected));

  test("RFC 3339 with nanoseconds drops trailing zeros; intervals format like gtime", () => {
    expect(rfc3339Nano(new Date(Date.UTC(1960, 1, 1, 7, 0, 0, 500)))).toBe("1960-02-01T07:00:00.5Z");
    expect([500, 1_000, 90_000, 3_600_000, 2 * 86_400_000].map(formatInterval)).toEqual([
      "500ms",
      "1s",
      "1m",
      "1h",
      "2d",
    ]);
  });

  test("template variables: single value with ' doubled, multi-value and :sqlstring quoted", () => {
    const v = { ...ctx, vars: { tenant: "o'neil", device: ["a", "b'c"] } };
    expect(expandGrafanaSql("t = '$tenant' AND d IN ($device)", v)).toBe("t = 'o''neil' AND d IN ('a','b''c')");
    const sqlstring = (name: string) => `$\{${name}:sqlstring}`; // Grafana's ${var:sqlstring}
    expect(expandGrafanaSql(`d IN (${sqlstring("device")}) OR x = ${sqlstring("tenant")}`, v)).toBe(
      "d IN ('a','b''c') OR x = 'o''neil'",
    );
    expect(() => expandGrafanaSql("$__nope(x)", ctx)).toThrow('unknown macro "__nope"');
  });
});
