/**
 * Progress for long operator commands, with cli-progress: a live bar on a terminal (done / total,
 * rate, ETA); plain lines every 2 s when stderr is not a terminal (CI, systemd, pipes).
 */
import { SingleBar } from "cli-progress";

export interface Progress {
  update(done: number, total: number, items: number): void;
  done(): void;
}

export function progressReporter(label: string): Progress {
  const started = Date.now();
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {value}/{total} events | {items} readings | {rate} readings/s | ETA {eta_formatted}`,
    noTTYOutput: true,
    notTTYSchedule: 2_000,
    fps: 5,
    hideCursor: true,
    etaBuffer: 50,
  });
  let started_ = false;
  return {
    update(done, total, items) {
      const rate = Math.round(items / Math.max(0.001, (Date.now() - started) / 1000));
      if (!started_) {
        bar.start(total, done, { items, rate });
        started_ = true;
      }
      bar.setTotal(total);
      bar.update(done, { items, rate });
    },
    done() {
      if (started_) bar.stop();
    },
  };
}
