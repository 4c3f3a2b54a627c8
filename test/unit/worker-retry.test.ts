import { describe, expect, test } from "bun:test";
import { retryUntil } from "../../src/pipeline/retry.ts";
import { StopBudget } from "../../src/pipeline/stop.ts";

const policy = { baseMs: 1, maxMs: 4 };

describe("retryUntil", () => {
  test("retries failures with backoff until the attempt succeeds", async () => {
    const seen: Array<[number, number | null]> = [];
    const r = await retryUntil(
      async (n) => {
        if (n < 3) throw new Error(`fail ${n}`);
        return "done";
      },
      { ...policy, until: () => Infinity, onError: (_err, n, wait) => seen.push([n, wait]) },
    );
    expect(r).toEqual({ ok: true, value: "done", attempts: 4 });
    expect(seen.map(([n]) => n)).toEqual([0, 1, 2]);
    for (const [, wait] of seen) expect(wait).toBeGreaterThan(0);
  });

  test("gives up once the deadline has passed, reporting the last failure with no wait", async () => {
    const budget = new StopBudget();
    const seen: Array<number | null> = [];
    let attempts = 0;
    const r = await retryUntil(
      async () => {
        attempts++;
        if (attempts === 2) budget.begin(0);
        throw new Error("database away");
      },
      { ...policy, until: () => budget.deadline, onError: (_err, _n, wait) => seen.push(wait) },
    );
    expect(r).toEqual({ ok: false });
    expect(attempts).toBe(2);
    expect(seen[0]).toBeGreaterThan(0);
    expect(seen[1]).toBeNull();
  });

  test("an error that is not retryable is thrown at once", async () => {
    let attempts = 0;
    let errors = 0;
    const refused = Object.assign(new Error("bad data"), { code: "22P02" });
    const run = retryUntil(
      async () => {
        attempts++;
        throw refused;
      },
      {
        ...policy,
        until: () => Infinity,
        retryable: (err) => (err as { code?: string }).code !== "22P02",
        onError: () => errors++,
      },
    );
    await expect(run).rejects.toBe(refused);
    expect(attempts).toBe(1);
    expect(errors).toBe(0);
  });

  test("a wait is cut to the deadline", async () => {
    const until = Date.now() + 30;
    const started = Date.now();
    const r = await retryUntil(
      async () => {
        throw new Error("down");
      },
      { baseMs: 60_000, maxMs: 60_000, until: () => until },
    );
    expect(r.ok).toBe(false);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("StopBudget", () => {
  test("has no deadline until a stop begins, then keeps the first one", () => {
    const b = new StopBudget();
    expect(b.stopping).toBe(false);
    expect(b.deadline).toBe(Infinity);
    const before = Date.now();
    b.begin(1_000);
    expect(b.stopping).toBe(true);
    expect(b.deadline).toBeGreaterThanOrEqual(before + 1_000);
    const first = b.deadline;
    b.begin(60_000);
    expect(b.deadline).toBe(first);
  });

  test("within waits for the work, but not past the deadline", async () => {
    const b = new StopBudget();
    b.begin(50);
    let finished = false;
    await b.within(new Promise<void>((resolve) => setTimeout(() => ((finished = true), resolve()), 5)));
    expect(finished).toBe(true);
    const started = Date.now();
    await b.within(new Promise<void>(() => {}));
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
