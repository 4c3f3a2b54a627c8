import { describe, expect, test } from "bun:test";
import { OrderedAcks, type OrderedAckSteps } from "../../src/core/ordered-acks.ts";

/** A promise settled from outside, to play a database write that commits when the test says so. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Lets every pending continuation run: a macrotask turn drains the microtask queue. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A pipeline over numbered messages whose writes are held until the test commits them. */
function harness(concurrency: number, overrides: Partial<OrderedAckSteps<number>> = {}) {
  const writes = new Map<number, ReturnType<typeof deferred<boolean>>>();
  const started: number[][] = [];
  const acked: number[] = [];
  const announced: number[][] = [];
  const errors: unknown[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const acks = new OrderedAcks<number>({
    concurrency,
    write: async (items) => {
      started.push(items);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const d = deferred<boolean>();
      writes.set(items[0]!, d);
      try {
        return await d.promise;
      } finally {
        inFlight--;
      }
    },
    announce: async (items) => {
      announced.push(items);
      return true;
    },
    settle: (items) => acked.push(...items),
    onWriteError: (err) => errors.push(err),
    ...overrides,
  });
  /** Commits (or fails) the write of the batch that starts with message `first`. */
  const commit = async (first: number, ok = true) => {
    writes.get(first)!.resolve(ok);
    await flush();
  };
  return { acks, writes, started, acked, announced, errors, commit, maxInFlight: () => maxInFlight };
}

describe("ordered acks", () => {
  test("acks a batch only after its write committed", async () => {
    const h = harness(1);
    h.acks.push([1, 2, 3]);
    await flush();
    expect(h.started).toEqual([[1, 2, 3]]);
    expect(h.acked).toEqual([]);
    expect(h.acks.held()).toEqual([1, 2, 3]);
    await h.commit(1);
    expect(h.acked).toEqual([1, 2, 3]);
    expect(h.acks.held()).toEqual([]);
    expect(h.acks.idle).toBe(true);
  });

  test("announces before acking, in order, and an announce that fails leaves the batch unacked", async () => {
    const order: string[] = [];
    const h = harness(2, {
      announce: async (items) => {
        order.push(`announce ${items[0]}`);
        return items[0] !== 10;
      },
      settle: (items) => order.push(`ack ${items[0]}`),
    });
    h.acks.push([10]);
    h.acks.push([20]);
    await flush();
    await h.commit(20);
    expect(order).toEqual([]);
    await h.commit(10);
    expect(order).toEqual(["announce 10", "announce 20", "ack 20"]);
  });

  test("overlapping flushes: up to `concurrency` writes at once, acks in push order", async () => {
    const h = harness(2);
    h.acks.push([1]);
    h.acks.push([2]);
    h.acks.push([3]);
    await flush();
    // Two writes run, the third waits for a slot.
    expect(h.started).toEqual([[1], [2]]);
    await h.commit(2);
    // The second committed first: it waits for the first, and its slot goes to the third.
    expect(h.acked).toEqual([]);
    expect(h.started).toEqual([[1], [2], [3]]);
    await h.commit(3);
    expect(h.acked).toEqual([]);
    await h.commit(1);
    expect(h.acked).toEqual([1, 2, 3]);
    expect(h.maxInFlight()).toBe(2);
  });

  test("a batch whose write gives up or throws is never acked; the later ones are, in order", async () => {
    const h = harness(3);
    h.acks.push([1]);
    h.acks.push([2]);
    h.acks.push([3]);
    await flush();
    await h.commit(3);
    h.writes.get(2)!.reject(new Error("connection lost"));
    await flush();
    await h.commit(1, false);
    expect(h.acked).toEqual([3]);
    expect(h.announced).toEqual([[3]]);
    expect(h.errors.map((e) => (e as Error).message)).toEqual(["connection lost"]);
    expect(h.acks.idle).toBe(true);
  });

  test("a failed batch is retried by its write step and acked only once a retry committed", async () => {
    let attempts = 0;
    const outcome = deferred<void>();
    const acked: number[] = [];
    const acks = new OrderedAcks<number>({
      concurrency: 1,
      write: async () => {
        // The writer's write step: retries until the database takes the batch.
        for (;;) {
          attempts++;
          if (attempts >= 3) return true;
          await Promise.resolve();
        }
      },
      announce: async () => true,
      settle: (items) => {
        acked.push(...items);
        outcome.resolve();
      },
    });
    acks.push([7, 8]);
    expect(acked).toEqual([]);
    await outcome.promise;
    expect(attempts).toBe(3);
    expect(acked).toEqual([7, 8]);
  });

  test("stop drains: whenIdle resolves only after every pushed batch is settled or given up", async () => {
    const h = harness(2);
    h.acks.push([1]);
    h.acks.push([2]);
    h.acks.push([3]);
    let drained = false;
    void h.acks.whenIdle().then(() => (drained = true));
    await flush();
    await h.commit(1);
    expect(drained).toBe(false);
    await h.commit(2);
    expect(drained).toBe(false);
    expect(h.acks.held()).toEqual([3]);
    await h.commit(3, false);
    expect(drained).toBe(true);
    expect(h.acked).toEqual([1, 2]);
    // Idle already: resolves at once.
    await h.acks.whenIdle();
  });
});
