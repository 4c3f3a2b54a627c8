/**
 * Retry with backoff until a deadline (a StopBudget's, see stop.ts): the part of every worker
 * (writer, evaluator, notifier) that keeps going through trouble and gives up only when a stop
 * has run out of time. Nothing is acked or dropped by giving up: what was not done
 * stays unacked (or leased) and comes back.
 */
import { backoffMs, sleep } from "../lib/backoff.ts";

export interface RetryPolicy {
  /** Backoff with full jitter, from baseMs doubling to maxMs (lib/backoff.ts). */
  baseMs: number;
  maxMs: number;
  /** Epoch ms after which no new attempt starts, read at each failure (it moves when a stop begins). */
  until: () => number;
  /** Errors not worth retrying are thrown at once (default: every error is retried). */
  retryable?: (err: unknown) => boolean;
  /** Every failed attempt that was retryable; waitMs is null when the deadline passed and no retry follows. */
  onError?: (err: unknown, attempt: number, waitMs: number | null) => void;
}

export type Retried<T> = { ok: true; value: T; attempts: number } | { ok: false };

/**
 * Runs `attempt` until it resolves. A retryable failure waits its backoff (cut to the deadline)
 * and tries again; past the deadline it returns `{ ok: false }`. A failure that is not
 * retryable is thrown.
 */
export async function retryUntil<T>(attempt: (n: number) => Promise<T>, p: RetryPolicy): Promise<Retried<T>> {
  for (let n = 0; ; n++) {
    try {
      return { ok: true, value: await attempt(n), attempts: n + 1 };
    } catch (err) {
      if (p.retryable && !p.retryable(err)) throw err;
      const left = p.until() - Date.now();
      if (left <= 0) {
        p.onError?.(err, n, null);
        return { ok: false };
      }
      const wait = backoffMs(n, p.baseMs, p.maxMs);
      p.onError?.(err, n, wait);
      await sleep(Math.min(wait, left));
    }
  }
}
