/**
 * One call per key in flight: `run` returns the pending promise for `key` if there is one, else
 * starts `fn` and forgets it once it settles, however many callers wait for it or give up on it.
 * The key cache and the tenant lookup use it so that a slow store gets one query per entry.
 */
export class SingleFlight<K, V> {
  private readonly pending = new Map<K, Promise<V>>();

  has(key: K): boolean {
    return this.pending.has(key);
  }

  run(key: K, fn: () => Promise<V>): Promise<V> {
    let p = this.pending.get(key);
    if (!p) {
      p = fn().finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }
}
