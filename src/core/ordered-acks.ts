/**
 * The writer's ordered-ack pipeline, free of I/O: batches are written up to `concurrency` at a
 * time (each write may retry for as long as it likes), and settled (announced, then acked)
 * strictly in the order they were pushed, each only after its own write committed. A write that
 * reports false (shutdown cut its retries short) or throws, or an announce that reports false,
 * leaves its batch unsettled: its messages stay unacked and are redelivered. Later batches are
 * still settled, in order.
 */
export interface OrderedAckSteps<T> {
  /** Batches written at once (at least 1). */
  concurrency: number;
  /** Writes a batch, retrying as it sees fit. True once committed; false when it gave up. */
  write(items: T[]): Promise<boolean>;
  /** Runs after the commit, before the acks, in push order (the writer announces the batch). False (or a throw): leave it unacked. */
  announce(items: T[]): Promise<boolean>;
  /** Acks (or terminates) the batch's messages: only after write and announce succeeded, in push order. */
  settle(items: T[]): void;
  /** A write that threw instead of returning false. */
  onWriteError?(err: unknown): void;
}

export class OrderedAcks<T> {
  /** Batches waiting for a write slot. */
  private readonly queue: T[][] = [];
  /** Batches being written or waiting to be announced and settled, oldest first. */
  private readonly pipeline: Array<{ items: T[]; written: Promise<boolean> }> = [];
  private writing = 0;
  private settling = false;
  private idleWaiters: Array<() => void> = [];
  private readonly concurrency: number;

  constructor(private readonly steps: OrderedAckSteps<T>) {
    this.concurrency = Math.max(1, steps.concurrency);
  }

  /** Hands over a cut batch; it is written when a slot is free. */
  push(items: T[]): void {
    this.queue.push(items);
    this.pump();
  }

  /** Every item not yet settled or given up (for keeping the messages alive). */
  held(): T[] {
    return [...this.pipeline.flatMap((p) => p.items), ...this.queue.flat()];
  }

  get idle(): boolean {
    return this.pipeline.length === 0 && this.queue.length === 0;
  }

  /** Resolves once nothing is queued, being written or waiting to be settled. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.queue.length > 0 && this.writing < this.concurrency) {
      const items = this.queue.shift()!;
      this.writing++;
      // Caught here, not when the batch reaches the head: a rejection waiting behind an older
      // batch would otherwise count as unhandled.
      const written = this.steps
        .write(items)
        .finally(() => {
          this.writing--;
          this.pump();
        })
        .catch((err) => {
          this.steps.onWriteError?.(err);
          return false;
        });
      this.pipeline.push({ items, written });
    }
    void this.settleInOrder();
  }

  private async settleInOrder(): Promise<void> {
    if (this.settling) return;
    this.settling = true;
    while (this.pipeline.length > 0) {
      const head = this.pipeline[0]!;
      const ok = (await head.written) && (await this.steps.announce(head.items).catch(() => false));
      if (ok) this.steps.settle(head.items);
      this.pipeline.shift();
    }
    this.settling = false;
    if (this.idle) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
