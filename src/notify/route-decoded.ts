/**
 * Decoded telemetry-stream messages shared by the routes of one process (decision 0611): routes
 * of the same tenant read the same messages at about the same time, each with its own consumer;
 * the first to reach a message decodes it, the others take the readings from here. Bounded by the
 * messages' size (oldest dropped first); a route that falls behind decodes for itself.
 */
import { decodeEnvelope } from "../core/envelope.ts";
import type { Reading } from "../core/record.ts";

export interface Decoded {
  /** The message's readings (shared: never changed), or null when it is not an envelope. */
  readings(seq: number, data: Uint8Array): readonly Reading[] | null;
}

const text = new TextDecoder();

export function decodedCache(maxBytes = 2 * 1024 * 1024): Decoded {
  const entries = new Map<number, { readings: readonly Reading[] | null; bytes: number }>();
  let bytes = 0;
  return {
    readings(seq, data) {
      const hit = entries.get(seq);
      if (hit) return hit.readings;
      let readings: readonly Reading[] | null;
      try {
        readings = decodeEnvelope(text.decode(data)).readings;
      } catch {
        readings = null; // the writer dead-letters what it cannot store; routes forward only what it can
      }
      if (data.length <= maxBytes) {
        entries.set(seq, { readings, bytes: data.length });
        bytes += data.length;
        for (const [k, e] of entries) {
          if (bytes <= maxBytes) break;
          entries.delete(k);
          bytes -= e.bytes;
        }
      }
      return readings;
    },
  };
}
