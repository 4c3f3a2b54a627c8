import { expect, test } from "bun:test";
import { collectionFor, startMemoryGovernor } from "../../src/server/memory.ts";
import { loadConfig } from "../../src/config/load.ts";

const MiB = 2 ** 20;

test("forces a full collection above the limit while the heap is a third of it, at most once per gap", () => {
  const over = { rss: 225 * MiB, heap: 100 * MiB };
  expect(collectionFor({ rss: 100 * MiB, heap: 90 * MiB }, 192 * MiB, 10_000, -Infinity)).toBe("none");
  expect(collectionFor(over, 192 * MiB, 10_000, -Infinity)).toBe("full");
  expect(collectionFor({ rss: 200 * MiB, heap: 40 * MiB }, 192 * MiB, 10_000, -Infinity)).toBe("none"); // the heap is not what fills RSS
  expect(collectionFor(over, 192 * MiB, 10_500, 10_000)).toBe("none");
  expect(collectionFor(over, 192 * MiB, 11_000, 10_000)).toBe("full");
  expect(collectionFor({ rss: 2_000 * MiB, heap: 1_000 * MiB }, 0, 12_000, -Infinity)).toBe("none");
});

test("the governor collects while RSS is above the limit, once per gap, and stops", async () => {
  let rss = 300 * MiB;
  let calls = 0;
  const governor = startMemoryGovernor(192 * MiB, {
    memory: () => ({ rss, heap: rss / 2 }),
    gc: () => {
      calls++;
      rss = calls === 1 ? 250 * MiB : 150 * MiB;
    },
  });
  await Bun.sleep(1_200);
  expect(calls).toBe(1); // at 0.5 s; at 1.0 s still above, but within the gap
  await Bun.sleep(1_000);
  expect(calls).toBe(2); // at 1.5 s, then below the limit
  await Bun.sleep(600);
  expect(calls).toBe(2);
  governor.stop();
});

test("TELEMETRY_SOFT_MEMORY_LIMIT: a size, off, or a clear error", () => {
  expect(loadConfig({}, {}).softMemoryLimit).toBe(192 * MiB);
  expect(loadConfig({}, { TELEMETRY_SOFT_MEMORY_LIMIT: "off" }).softMemoryLimit).toBe(0);
  expect(loadConfig({}, { TELEMETRY_SOFT_MEMORY_LIMIT: "1GiB" }).softMemoryLimit).toBe(1024 * MiB);
  expect(() => loadConfig({}, { TELEMETRY_SOFT_MEMORY_LIMIT: "lots" })).toThrow(/TELEMETRY_SOFT_MEMORY_LIMIT/);
});
