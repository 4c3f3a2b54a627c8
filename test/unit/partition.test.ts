import { expect, test } from "bun:test";
import type { CommittedBatch } from "../../src/core/committed.ts";
import {
  LEGACY_PARTITION,
  partitionFilter,
  partitionNames,
  partitionOf,
  partitionSubject,
  splitByPartition,
} from "../../src/core/partition.ts";

test("a device's partition is stable, in range, and spreads devices", () => {
  const seen = new Map<number, number>();
  for (let d = 0; d < 1_600; d++) {
    const p = partitionOf("acme", `dev-${d}`, 16);
    expect(p).toBe(partitionOf("acme", `dev-${d}`, 16));
    expect(p >= 0 && p < 16).toBe(true);
    seen.set(p, (seen.get(p) ?? 0) + 1);
  }
  expect(seen.size).toBe(16);
  for (const n of seen.values()) expect(n).toBeGreaterThan(50); // ~100 each
  expect(partitionOf("acme", "a", 1)).toBe(0);
  // Pinned: writers and evaluators of different versions must agree on the hash.
  expect([partitionOf("acme", "truck-1", 16), partitionOf("acme", "truck-2", 256)]).toEqual([2, 255]);
});

test("subjects and filters: one token per partition; old-form events are the legacy partition", () => {
  expect(partitionSubject("acme", 3)).toBe("telemetry.committed.v1.acme.3");
  expect(partitionFilter("3")).toBe("telemetry.committed.v1.*.3");
  expect(partitionFilter(LEGACY_PARTITION)).toBe("telemetry.committed.v1.*");
  expect(partitionNames(3)).toEqual(["legacy", "0", "1", "2"]);
});

test("splitting by partition keeps every point, each device's points together and in order", () => {
  const b: CommittedBatch = { tenant: "acme", series: [], positions: [], devices: [] };
  for (let d = 0; d < 40; d++) {
    for (const ts of [1, 2, 3]) {
      b.series.push({ deviceId: `d${d}`, metric: "t", ts, value: ts, eventId: `${d}-${ts}`, receivedAt: ts });
      b.positions.push({ deviceId: `d${d}`, ts, lat: 1, lon: 2, eventId: `${d}-${ts}`, receivedAt: ts });
    }
    b.devices.push({ deviceId: `d${d}`, lastTs: 3, receivedAt: 3 });
  }
  const parts = splitByPartition(b, 8);
  expect(parts.map((p) => p.partition)).toEqual([...parts.map((p) => p.partition)].sort((x, y) => x - y));
  expect(parts.flatMap((p) => p.batch.series)).toHaveLength(b.series.length);
  expect(parts.flatMap((p) => p.batch.positions)).toHaveLength(b.positions.length);
  expect(parts.flatMap((p) => p.batch.devices)).toHaveLength(b.devices.length);
  for (const { partition, batch } of parts) {
    for (const s of [...batch.series, ...batch.positions, ...batch.devices])
      expect(partitionOf("acme", s.deviceId, 8)).toBe(partition);
    const d0 = batch.series.filter((s) => s.deviceId === batch.series[0]!.deviceId).map((s) => s.ts);
    expect(d0).toEqual([1, 2, 3]);
  }
});
