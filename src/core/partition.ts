/**
 * Evaluation partitions (decision 0550): the writer cuts each committed-batch event by device
 * into P partitions, hash(tenant, device) mod P, and publishes each part on
 * `telemetry.committed.v1.<tenant>.<p>`. A device always lands in the same partition, so whoever
 * holds that partition sees all of its points in stream order; several evaluator processes split
 * the partitions between them. Events of the old form (`telemetry.committed.v1.<tenant>`, written
 * before partitions existed) form one more partition, "legacy", read until it runs dry.
 */
import { COMMITTED_PREFIX, type CommittedBatch } from "./committed.ts";

export const DEFAULT_PARTITIONS = 16;
export const MAX_PARTITIONS = 256;
/** The partition of old-form events (no partition token in the subject). */
export const LEGACY_PARTITION = "legacy";

/** FNV-1a (32 bit) of tenant, NUL, device: stable across processes, versions and platforms. */
export function partitionOf(tenant: string, deviceId: string, partitions: number): number {
  let h = 0x811c9dc5;
  const s = `${tenant}\u0000${deviceId}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

export function partitionSubject(tenant: string, partition: number): string {
  return `${COMMITTED_PREFIX}.${tenant}.${partition}`;
}

/** The one-token filter of one partition (nats-server 2.9 consumers take a single filter). */
export function partitionFilter(partition: string): string {
  return partition === LEGACY_PARTITION ? `${COMMITTED_PREFIX}.*` : `${COMMITTED_PREFIX}.*.${partition}`;
}

/** Every partition an evaluator fleet shares: "legacy", then "0" .. "P-1". */
export function partitionNames(partitions: number): string[] {
  return [LEGACY_PARTITION, ...Array.from({ length: partitions }, (_, i) => String(i))];
}

/** Cuts a tenant's summary by device partition; each device's points stay together and in order. */
export function splitByPartition(
  b: CommittedBatch,
  partitions: number,
): Array<{ partition: number; batch: CommittedBatch }> {
  const parts = new Map<number, CommittedBatch>();
  const of = new Map<string, number>();
  const part = (deviceId: string) => {
    let p = of.get(deviceId);
    if (p === undefined) of.set(deviceId, (p = partitionOf(b.tenant, deviceId, partitions)));
    let batch = parts.get(p);
    if (!batch) parts.set(p, (batch = { tenant: b.tenant, series: [], positions: [], devices: [] }));
    return batch;
  };
  for (const s of b.series) part(s.deviceId).series.push(s);
  for (const p of b.positions) part(p.deviceId).positions.push(p);
  for (const d of b.devices) part(d.deviceId).devices.push(d);
  return [...parts].sort((x, y) => x[0] - y[0]).map(([partition, batch]) => ({ partition, batch }));
}
