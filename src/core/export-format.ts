/**
 * The two export formats, free of I/O (docs/export.md):
 *
 * - CSV, long format: `ts,device_id,event_id,lat,lon,metric,value`, one line per (reading, metric);
 *   a reading without metrics (a position only) is one line with metric and value empty. Device ids
 *   and metric names cannot hold commas, quotes or line breaks (their patterns forbid them), so no
 *   field needs quoting. Attributes are not in the CSV (they are in NDJSON).
 * - NDJSON, the ingest record shape (`device_id`, `ts`, `location`?, `metrics`?, `attributes`?), so
 *   an export POSTed back to /api/v1/telemetry makes the same events (same event ids).
 *
 * With a metric filter only those metrics are written (the query keeps readings that have one).
 */
export interface ExportRow {
  device_id: string;
  ts: Date;
  event_id: string;
  lat: number | null;
  lon: number | null;
  metrics: Record<string, number> | null;
  attributes: Record<string, string | number | boolean | null> | null;
}

export type ExportFormat = "csv" | "ndjson";

export const CSV_HEADER = "ts,device_id,event_id,lat,lon,metric,value\n";

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: "text/csv; charset=utf-8",
  ndjson: "application/x-ndjson",
};

function selected(metrics: Record<string, number> | null, only: readonly string[] | null): [string, number][] {
  if (!metrics) return [];
  if (!only) return Object.entries(metrics);
  const out: [string, number][] = [];
  for (const m of only) if (metrics[m] !== undefined) out.push([m, metrics[m]]);
  return out;
}

export function csvLines(rows: readonly ExportRow[], only: readonly string[] | null): string {
  let out = "";
  for (const r of rows) {
    const head = `${r.ts.toISOString()},${r.device_id},${r.event_id},${r.lat ?? ""},${r.lon ?? ""},`;
    const metrics = selected(r.metrics, only);
    if (metrics.length === 0) out += `${head},\n`;
    for (const [name, value] of metrics) out += `${head}${name},${value}\n`;
  }
  return out;
}

export function ndjsonLines(rows: readonly ExportRow[], only: readonly string[] | null): string {
  let out = "";
  for (const r of rows) {
    const rec: Record<string, unknown> = { device_id: r.device_id, ts: r.ts.toISOString() };
    if (r.lat !== null && r.lon !== null) rec.location = { lat: r.lat, lon: r.lon };
    const metrics = selected(r.metrics, only);
    if (metrics.length) rec.metrics = Object.fromEntries(metrics);
    if (r.attributes && Object.keys(r.attributes).length) rec.attributes = r.attributes;
    out += `${JSON.stringify(rec)}\n`;
  }
  return out;
}

export const formatLines = (format: ExportFormat) => (format === "csv" ? csvLines : ndjsonLines);
