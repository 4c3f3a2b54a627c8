/**
 * The bench's readings (bench/data.ts) as InfluxDB line protocol, millisecond precision: one
 * encoder for every system fed line protocol (InfluxDB, VictoriaMetrics, the server), so they all
 * get the same bytes. A reading is one line of measurement `bench`, its device as the tag
 * `device`, `temp`, `seq` and (every third) `lat`/`lon` as float fields:
 *   bench,device=peers-17 temp=21.3,seq=433,lat=52.50433,lon=13.39567 1767225600000
 * The server maps that to device_id, metrics `bench_temp`/`bench_seq` and a location
 * (docs/protocols/influx-line-protocol.md); InfluxDB stores one point of four fields; VictoriaMetrics
 * one sample in each of the series `bench_temp`, `bench_seq`, `bench_lat`, `bench_lon`.
 */
import { benchReading, DEVICES, PER_REQUEST, RUN } from "./data.ts";

export const MEASUREMENT = "bench";

/** Names line protocol cannot carry: empty, ending with a backslash, or with a tab or line break. */
function checked(s: string): string {
  if (s === "" || s.endsWith("\\") || /[\t\r\n]/.test(s))
    throw new Error(`line protocol cannot carry the name ${JSON.stringify(s)}`);
  return s;
}
const escapeMeasurement = (s: string) => checked(s).replace(/[, \\]/g, (c) => `\\${c}`);
const escapeKey = (s: string) => checked(s).replace(/[,= \\]/g, (c) => `\\${c}`);

function floatField(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`line protocol has no float for ${value}`);
  return String(value); // "20" is a float in line protocol (an integer needs the suffix i)
}

/** One line: measurement, tags, float fields (at least one), timestamp in milliseconds. */
export function encodeLine(
  measurement: string,
  tags: Readonly<Record<string, string>>,
  fields: Readonly<Record<string, number>>,
  tsMs: number,
): string {
  let line = escapeMeasurement(measurement);
  for (const [k, v] of Object.entries(tags)) line += `,${escapeKey(k)}=${escapeKey(v)}`;
  const parts = Object.entries(fields).map(([k, v]) => `${escapeKey(k)}=${floatField(v)}`);
  if (parts.length === 0) throw new Error("a line needs at least one field");
  return `${line} ${parts.join(",")} ${Math.trunc(tsMs)}`;
}

/** The i-th reading of a run as a line (the same reading recordLine gives as JSON). */
export function recordLp(runId: string, i: number, devices = DEVICES, run = RUN): string {
  const r = benchReading(runId, i, devices, run);
  const fields: Record<string, number> = { temp: r.temp, seq: r.seq };
  if (r.location) {
    fields.lat = r.location.lat;
    fields.lon = r.location.lon;
  }
  return encodeLine(MEASUREMENT, { device: r.device }, fields, r.ts);
}

/** Request n of a run: the same PER_REQUEST readings requestBody gives as NDJSON. */
export function lpBody(runId: string, n: number, perRequest = PER_REQUEST): string {
  const lines: string[] = new Array(perRequest);
  for (let k = 0; k < perRequest; k++) lines[k] = recordLp(runId, n * perRequest + k);
  return lines.join("\n");
}
