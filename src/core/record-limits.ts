/** The names and limits of a telemetry record, shared by its validation (record.ts) and its fast path (record-fast.ts). */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_:-]{1,128}$/;
export const METRIC_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,63}$/;
export const MAX_METRICS = 100;
export const MAX_ATTRIBUTES = 32;
export const MAX_ATTRIBUTE_BYTES = 2048;
export const COORDINATE_DECIMALS = 7;
/**
 * Names that mean something to every JavaScript object. JSON.parse makes them own keys, but
 * zod's record skips `__proto__` (the record was accepted with the metric silently gone) and
 * code reading `metrics[name]` finds `constructor` on any object: refused by name, per record.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);
