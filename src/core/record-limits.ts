/** The names and limits of a telemetry record, shared by its validation (record.ts) and its fast path (record-fast.ts). */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_:-]{1,128}$/;
export const METRIC_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,63}$/;
export const MAX_METRICS = 100;
export const MAX_ATTRIBUTES = 32;
export const MAX_ATTRIBUTE_BYTES = 2048;
export const COORDINATE_DECIMALS = 7;
/**
 * A metric value is 0 or of magnitude within [1e-150, 1e150] (docs/decisions/0470-metric-range.md):
 * the rollups keep the sum of squares in float8, and a square beyond float8's range made
 * PostgreSQL refuse the writer's whole batch (the upsert path) or stored an infinite or zero
 * sum of squares (binary COPY). Within these bounds a square stays a normal float8, with room
 * for 1e8 of them in one minute's sum.
 */
export const MAX_METRIC_MAGNITUDE = 1e150;
export const MIN_METRIC_MAGNITUDE = 1e-150;
export const METRIC_RANGE_MESSAGE = "metric values must be 0 or of magnitude between 1e-150 and 1e150";
/** False for NaN and ±Infinity too. */
export const metricInRange = (v: number): boolean =>
  v === 0 || (Math.abs(v) >= MIN_METRIC_MAGNITUDE && Math.abs(v) <= MAX_METRIC_MAGNITUDE);
/**
 * Names that mean something to every JavaScript object. JSON.parse makes them own keys, but
 * zod's record skips `__proto__` (the record was accepted with the metric silently gone) and
 * code reading `metrics[name]` finds `constructor` on any object: refused by name, per record.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);
