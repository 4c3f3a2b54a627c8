/**
 * The writer's batching decision, free of I/O: collect items until `maxRecords` readings or
 * `maxItems` items (broker messages) are held, or the oldest item has waited `maxWaitMs`, whichever
 * comes first. Items are never split, so a batch may exceed maxRecords by less than one item.
 */
export class Batch<T> {
  private items: T[] = [];
  private records = 0;
  private openedAt = 0;

  constructor(
    readonly maxRecords: number,
    readonly maxWaitMs: number,
    readonly maxItems = Infinity,
  ) {}

  add(item: T, recordCount: number, nowMs: number): void {
    if (this.items.length === 0) this.openedAt = nowMs;
    this.items.push(item);
    this.records += recordCount;
  }

  get size(): number {
    return this.records;
  }

  get length(): number {
    return this.items.length;
  }

  isFull(): boolean {
    return this.records >= this.maxRecords || this.items.length >= this.maxItems;
  }

  /** True when the batch holds something and should be written now. */
  isDue(nowMs: number): boolean {
    return this.items.length > 0 && (this.isFull() || nowMs - this.openedAt >= this.maxWaitMs);
  }

  /** Milliseconds until the batch is due by age (Infinity when empty). */
  msUntilDue(nowMs: number): number {
    return this.items.length === 0 ? Infinity : Math.max(0, this.openedAt + this.maxWaitMs - nowMs);
  }

  take(): T[] {
    const out = this.items;
    this.items = [];
    this.records = 0;
    return out;
  }
}
