/** How long the readings_1m rollups are kept: a duration of their own, or a multiple of the readings' retention. */
export type RollupRetention = { ms: number } | { times: number } | null;

/** Milliseconds, or null to keep the rollups (off, or a multiple of a readings' retention that is off). */
export function rollupRetentionMs(readingsMs: number | null, rollups: RollupRetention): number | null {
  if (rollups === null) return null;
  if ("ms" in rollups) return rollups.ms;
  return readingsMs === null ? null : Math.round(readingsMs * rollups.times);
}
