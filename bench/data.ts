/**
 * The readings every phase of the benchmark uses, so the raw parts and the server handle the same
 * rows. A request of PER_REQUEST records carries runs of RUN consecutive readings per device (a
 * gateway or a device uploading what it buffered): with 250 records and runs of 25, one request is
 * 10 broker messages of 25 readings. `runId` keeps the phases' event ids apart.
 */
import { planMessages, type PlannedMessage } from "../src/core/plan.ts";
import { normalizeRecord } from "../src/core/record.ts";

export const PER_REQUEST = 250;
export const RUN = 25;
export const DEVICES = 20_000;
export const TENANT = "bench";
export const BASE_TS = Date.UTC(2026, 0, 1);

/** The i-th reading of a run: `run` consecutive readings per device, a location on every third. */
export interface BenchReading {
  device: string;
  ts: number;
  location: { lat: number; lon: number } | null;
  temp: number;
  seq: number;
}

export function benchReading(runId: string, i: number, devices = DEVICES, run = RUN): BenchReading {
  return {
    device: `${runId}-${Math.floor(i / run) % devices}`,
    ts: BASE_TS + i * 1000,
    location: i % 3 === 0 ? { lat: 52.5 + (i % 1000) / 1e5, lon: 13.4 - (i % 500) / 1e5 } : null,
    temp: 20 + (i % 17) / 10,
    seq: i,
  };
}

/** The i-th record of a run as an NDJSON line (bench/line-protocol.ts encodes the same reading as line protocol). */
export function recordLine(runId: string, i: number, devices = DEVICES, run = RUN): string {
  const r = benchReading(runId, i, devices, run);
  const loc = r.location ? `,"location":{"lat":${r.location.lat},"lon":${r.location.lon}}` : "";
  return `{"device_id":"${r.device}","ts":${r.ts}${loc},"metrics":{"temp":${r.temp},"seq":${r.seq}}}`;
}

/** Request n of a run: PER_REQUEST records as an NDJSON body. */
export function requestBody(runId: string, n: number, perRequest = PER_REQUEST): string {
  const lines: string[] = new Array(perRequest);
  for (let k = 0; k < perRequest; k++) lines[k] = recordLine(runId, n * perRequest + k);
  return lines.join("\n");
}

/**
 * The broker messages the server would publish for `readings` readings of a run (the pure core
 * does the work: normalization, event ids, grouping, envelopes), request by request.
 */
export function plannedMessages(runId: string, readings: number, recordsPerMessage = 100): PlannedMessage[] {
  const out: PlannedMessage[] = [];
  const receivedAt = Date.now();
  for (let n = 0; n * PER_REQUEST < readings; n++) {
    const items = [];
    for (let k = 0; k < PER_REQUEST; k++) {
      const index = n * PER_REQUEST + k;
      const r = normalizeRecord(JSON.parse(recordLine(runId, index)), {
        tenant: TENANT,
        nowMs: receivedAt,
        maxFutureMs: 3_600_000,
      });
      if (!r.ok) throw new Error(`bench record ${index} invalid: ${JSON.stringify(r.errors)}`);
      items.push({ index: k, reading: r.reading });
    }
    out.push(...planMessages(items, { maxRecords: recordsPerMessage, maxBytes: 256 * 1024, receivedAt }).messages);
  }
  return out;
}
