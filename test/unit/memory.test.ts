import { expect, test } from "bun:test";
import { collectionFor, startMemoryGovernor } from "../../src/server/memory.ts";
import { loadConfig } from "../../src/config/load.ts";

const MiB = 2 ** 20;

test("asks for a concurrent collection above the limit, a synchronous one only a fifth above it, each at most once per gap", () => {
  const none = { concurrent: -Infinity, full: -Infinity };
  const over = { rss: 225 * MiB, heap: 100 * MiB };
  const far = { rss: 235 * MiB, heap: 100 * MiB };
  expect(collectionFor({ rss: 100 * MiB, heap: 90 * MiB }, 192 * MiB, 10_000, none)).toBe("none");
  expect(collectionFor(over, 192 * MiB, 10_000, none)).toBe("concurrent");
  expect(collectionFor({ rss: 200 * MiB, heap: 40 * MiB }, 192 * MiB, 10_000, none)).toBe("none"); // the heap is not what fills RSS
  expect(collectionFor(over, 192 * MiB, 10_500, { concurrent: 10_000, full: -Infinity })).toBe("none");
  expect(collectionFor(over, 192 * MiB, 11_000, { concurrent: 10_000, full: -Infinity })).toBe("concurrent");
  expect(collectionFor(far, 192 * MiB, 10_000, none)).toBe("full");
  expect(collectionFor(far, 192 * MiB, 10_500, { concurrent: -Infinity, full: 10_000 })).toBe("concurrent");
  expect(collectionFor(far, 192 * MiB, 10_500, { concurrent: 10_000, full: 10_000 })).toBe("none");
  expect(collectionFor({ rss: 2_000 * MiB, heap: 1_000 * MiB }, 0, 12_000, none)).toBe("none");
});

test("the governor collects while RSS is above the limit, synchronously only far above it, and stops", async () => {
  let rss = 300 * MiB;
  const calls: boolean[] = [];
  const governor = startMemoryGovernor(192 * MiB, {
    memory: () => ({ rss, heap: rss / 2 }),
    gc: (sync) => void (calls.push(sync), (rss = sync ? 220 * MiB : 150 * MiB)),
  });
  await Bun.sleep(1_200);
  expect(calls).toEqual([true, false]); // far above: synchronous; still above: concurrent
  await Bun.sleep(1_000);
  expect(calls).toEqual([true, false]); // below the limit now
  governor.stop();
});

test("TELEMETRY_SOFT_MEMORY_LIMIT: a size, off, or a clear error", () => {
  expect(loadConfig({}, {}).softMemoryLimit).toBe(192 * MiB);
  expect(loadConfig({}, { TELEMETRY_SOFT_MEMORY_LIMIT: "off" }).softMemoryLimit).toBe(0);
  expect(loadConfig({}, { TELEMETRY_SOFT_MEMORY_LIMIT: "1GiB" }).softMemoryLimit).toBe(1024 * MiB);
  expect(() => loadConfig({}, { TELEMETRY_SOFT_MEMORY_LIMIT: "lots" })).toThrow(/TELEMETRY_SOFT_MEMORY_LIMIT/);
});
