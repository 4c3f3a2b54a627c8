import { expect, test } from "bun:test";
import { shouldCollect, startMemoryGovernor } from "../../src/server/memory.ts";
import { loadConfig } from "../../src/config/load.ts";

const MiB = 2 ** 20;

test("collects only above the limit with a heap of a third of it or more, at most once per gap, never when off", () => {
  const big = { rss: 200 * MiB, heap: 100 * MiB };
  expect(shouldCollect({ rss: 100 * MiB, heap: 90 * MiB }, 192 * MiB, 10_000, -Infinity)).toBe(false);
  expect(shouldCollect(big, 192 * MiB, 10_000, -Infinity)).toBe(true);
  expect(shouldCollect({ rss: 200 * MiB, heap: 40 * MiB }, 192 * MiB, 10_000, -Infinity)).toBe(false); // the heap is not what fills RSS
  expect(shouldCollect(big, 192 * MiB, 10_500, 10_000)).toBe(false);
  expect(shouldCollect(big, 192 * MiB, 11_000, 10_000)).toBe(true);
  expect(shouldCollect({ rss: 2_000 * MiB, heap: 1_000 * MiB }, 0, 12_000, -Infinity)).toBe(false);
});

test("the governor forces a collection while RSS is above the limit, and stops", async () => {
  let rss = 300 * MiB;
  let collections = 0;
  const governor = startMemoryGovernor(192 * MiB, {
    memory: () => ({ rss, heap: rss / 2 }),
    gc: () => void (collections++, (rss = 150 * MiB)),
  });
  await Bun.sleep(1_200);
  expect(collections).toBe(1);
  await Bun.sleep(1_000);
  expect(collections).toBe(1); // below the limit now
  governor.stop();
});

test("TELEMETRY_SOFT_MEMORY_LIMIT: a size, off, or a clear error", () => {
  expect(loadConfig({}, {}).softMemoryLimit).toBe(192 * MiB);
  expect(loadConfig({}, { TELEMETRY_SOFT_MEMORY_LIMIT: "off" }).softMemoryLimit).toBe(0);
  expect(loadConfig({}, { TELEMETRY_SOFT_MEMORY_LIMIT: "1GiB" }).softMemoryLimit).toBe(1024 * MiB);
  expect(() => loadConfig({}, { TELEMETRY_SOFT_MEMORY_LIMIT: "lots" })).toThrow(/TELEMETRY_SOFT_MEMORY_LIMIT/);
});
