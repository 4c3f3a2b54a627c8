/**
 * Stopping within a budget: a worker's own deadline (StopBudget) and the process's ordered list
 * of stop steps sharing one drain budget (StopStack, the composition root's shutdown).
 */
import { sleep } from "../lib/backoff.ts";

/** The deadline of a stop: none (Infinity) until `begin`, then `ms` from then. */
export class StopBudget {
  private at = Infinity;
  private begun = false;

  /** Starts the stop; later calls keep the first deadline. */
  begin(ms: number): void {
    if (this.begun) return;
    this.begun = true;
    this.at = Date.now() + ms;
  }

  get stopping(): boolean {
    return this.begun;
  }

  /** Epoch ms after which no new attempt starts (Infinity while running). */
  get deadline(): number {
    return this.at;
  }

  /** Waits for `work`, but no longer than the deadline (what is not done then stays unacked). */
  async within(work: Promise<unknown>): Promise<void> {
    if (this.at === Infinity) await work;
    else await Promise.race([work, sleep(Math.max(0, this.at - Date.now()))]);
  }
}

/**
 * Stop steps run in reverse order of registration (what started last stops first), each after
 * the one before it finished; a step that fails is reported and the next one still runs. The
 * drain budget starts when `run` does: `remaining()` is what the earlier steps left of it, never
 * less than `floorMs`.
 */
export class StopStack {
  private readonly steps: Array<() => Promise<void>> = [];
  private drainUntil = 0;

  constructor(
    private readonly drainMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly floorMs = 250,
  ) {}

  push(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  remaining(): number {
    return Math.max(this.floorMs, this.drainUntil - Date.now());
  }

  /** Runs every step registered so far, last first; each runs once. */
  async run(): Promise<void> {
    this.drainUntil = Date.now() + this.drainMs;
    for (const step of this.steps.splice(0).reverse()) await step().catch(this.onError);
  }
}
