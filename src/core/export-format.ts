/**
 * The two export formats (docs/export.md):
 *
 * - CSV, long format: `ts,device_id,event_id,lat,lon,metric,value`, one line per (reading, metric);
 *   a reading without metrics (a position only) is one line with metric and value empty. Device ids
 *   and metric names cannot hold commas, quotes or line breaks (their patterns forbid them), so no
 *   field needs quoting. Attributes are not in the CSV (they are in NDJSON).
 * - NDJSON, the ingest record shape (`device_id`, `ts`, `location`?, `metrics`?, `attributes`?), so
 *   an export POSTed back to /api/v1/telemetry makes the same events (same event ids).
 *
 * With a metric filter only those metrics are written (the query keeps readings that have one).
 * PostgreSQL writes the lines (db/export-sql.ts, decision 0605); this module holds what the API
 * needs to know about them.
 */
export type ExportFormat = "csv" | "ndjson";

export const CSV_HEADER = "ts,device_id,event_id,lat,lon,metric,value\n";

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: "text/csv; charset=utf-8",
  ndjson: "application/x-ndjson",
};
