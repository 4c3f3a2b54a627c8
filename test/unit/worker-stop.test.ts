import { describe, expect, test } from "bun:test";
import { StopBudget, StopStack } from "../../src/pipeline/stop.ts";

describe("StopStack", () => {
  test("runs the steps last first, one after another, and a failing step does not stop the rest", async () => {
    const errors: unknown[] = [];
    const stack = new StopStack(1_000, (err) => errors.push(err));
    const ran: string[] = [];
    let running = 0;
    const step =
      (name: string, fail = false) =>
      async () => {
        running++;
        expect(running).toBe(1);
        await new Promise((r) => setTimeout(r, 2));
        ran.push(name);
        running--;
        if (fail) throw new Error(`${name} failed`);
      };
    stack.push(step("database"));
    stack.push(step("broker", true));
    stack.push(step("http"));
    await stack.run();
    expect(ran).toEqual(["http", "broker", "database"]);
    expect(errors.map((e) => (e as Error).message)).toEqual(["broker failed"]);
    // Each step runs once.
    await stack.run();
    expect(ran).toHaveLength(3);
  });

  test("remaining() is what the earlier steps left of the drain budget, never under the floor", async () => {
    const seen: number[] = [];
    const stack = new StopStack(200, () => {}, 50);
    stack.push(async () => void seen.push(stack.remaining()));
    stack.push(async () => {
      seen.push(stack.remaining());
      await new Promise((r) => setTimeout(r, 120));
    });
    stack.push(async () => {
      seen.push(stack.remaining());
      await new Promise((r) => setTimeout(r, 100));
    });
    await stack.run();
    const [first, second, third] = seen as [number, number, number];
    expect(first).toBeGreaterThan(150);
    expect(first).toBeLessThanOrEqual(200);
    expect(second).toBeLessThan(first - 50);
    // 220 ms spent of 200: the floor.
    expect(third).toBe(50);
  });
});

describe("StopBudget.within before a stop began", () => {
  test("waits for the work itself (no deadline yet)", async () => {
    const b = new StopBudget();
    let finished = false;
    await b.within(new Promise<void>((resolve) => setTimeout(() => ((finished = true), resolve()), 20)));
    expect(finished).toBe(true);
  });
});

describe("StopBudget without a time limit", () => {
  test("begin(Infinity) still counts as stopping", () => {
    const b = new StopBudget();
    b.begin(Infinity);
    expect(b.stopping).toBe(true);
    expect(b.deadline).toBe(Infinity);
  });
});
