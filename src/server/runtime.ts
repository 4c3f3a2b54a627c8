/**
 * A data dir belongs to one `telemetry serve` at a time. The owner writes its pid and the URLs of
 * the embedded services it started; CLI commands then use those services instead of starting
 * their own on the same files (a second PostgreSQL on one data dir would stop the first).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, pidCommandLine } from "../embedded/process.ts";

export interface RuntimeInfo {
  pid: number;
  natsUrl?: string;
  databaseUrl?: string;
}

const file = (dataDir: string) => join(dataDir, "telemetry.run.json");

/** The live server owning this data dir, if any. */
export function runningServer(dataDir: string): RuntimeInfo | null {
  const path = file(dataDir);
  if (!existsSync(path)) return null;
  try {
    const info = JSON.parse(readFileSync(path, "utf8")) as RuntimeInfo;
    return info.pid !== process.pid && pidAlive(info.pid) && /telemetry|main\.ts|bun/.test(pidCommandLine(info.pid))
      ? info
      : null;
  } catch {
    return null;
  }
}

/** Claims the data dir for this process or throws naming the owner; returns the release function. */
export function claimDataDir(dataDir: string): { update(info: Omit<RuntimeInfo, "pid">): void; release(): void } {
  const owner = runningServer(dataDir);
  if (owner)
    throw new Error(
      `data dir ${dataDir} is in use by telemetry process ${owner.pid}; stop it or use another --data-dir`,
    );
  let current: RuntimeInfo = { pid: process.pid };
  const write = () => writeFileSync(file(dataDir), `${JSON.stringify(current)}\n`, { mode: 0o600 });
  write();
  return {
    update(info) {
      current = { ...current, ...info };
      write();
    },
    release() {
      if (runningServer(dataDir) === null) rmSync(file(dataDir), { force: true });
    },
  };
}
