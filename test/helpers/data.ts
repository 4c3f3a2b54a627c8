/** Test data: deterministic records, and independent expectations computed from them. */
export const BASE_TS = Date.UTC(2026, 0, 1, 0, 0, 0);

export interface GenRecord {
  device_id: string;
  ts: string | number;
  location?: { lat: number; lon: number };
  metrics?: Record<string, number>;
  attributes?: Record<string, unknown>;
}

/** n valid, distinct records spread over `devices` devices (same input -> same records). */
export function validRecords(n: number, devices = 50, offset = 0): GenRecord[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    const rec: GenRecord = {
      device_id: `dev-${i % devices}`,
      ts: BASE_TS + i * 1000,
      metrics: { temp: 20 + (i % 17) / 10, rssi: -60 - (i % 7) },
    };
    if (i % 3 === 0) rec.location = { lat: 52.5 + (i % 1000) / 1e5, lon: 13.4 - (i % 500) / 1e5 };
    if (i % 5 === 0) rec.ts = new Date(BASE_TS + i * 1000).toISOString();
    if (i % 11 === 0) rec.attributes = { fw: `1.${i % 4}` };
    return rec;
  });
}

/** One invalid record per kind, cycling through the kinds. */
export const INVALID_KINDS: Array<(i: number) => unknown> = [
  (i) => ({ device_id: `bad.dev-${i}`, ts: BASE_TS, metrics: { t: 1 } }),
  (i) => ({ device_id: `dev-${i}`, metrics: { t: 1 } }),
  (i) => ({ device_id: `dev-${i}`, ts: BASE_TS, location: { lat: 95, lon: 0 } }),
  (i) => ({ device_id: `dev-${i}`, ts: "1970-01-01T00:00:00Z", metrics: { t: 1 } }),
  (i) => ({ device_id: `dev-${i}`, ts: BASE_TS, metrics: { t: "hot" } }),
  (i) => ({ device_id: `dev ${i}`, ts: BASE_TS, metrics: { t: 1 } }),
  (i) => ({ device_id: `dev-${i}`, ts: BASE_TS }),
  (i) => `not an object ${i}`,
];

/** The identity of a record as the database should hold it: device and epoch ms. */
export function identity(r: GenRecord): string {
  const ms = typeof r.ts === "number" ? r.ts : Date.parse(r.ts);
  return `${r.device_id}@${ms}`;
}
