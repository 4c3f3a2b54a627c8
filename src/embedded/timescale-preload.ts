/**
 * Whether the supervised PostgreSQL preloads TimescaleDB: the extension's files in that
 * installation (`pg_config --sharedir`/`--pkglibdir` of its bin dir, else the usual sibling
 * paths), and a marker in the data dir saying what it was made for (src/core/timescale.ts decides).
 */
import { chownSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { planPreload, type DataDirStorage, type PreloadPlan, type TimescaleWanted } from "../core/timescale.ts";
import type { Logger } from "../lib/log.ts";

/** In the PostgreSQL data dir: "timescaledb" or "postgresql", written when the data dir is made. */
export const MARKER_FILE = "telemetry-storage";

export interface InstallDirs {
  share: string[];
  lib: string[];
}

/** Where this PostgreSQL keeps extension control files (<share>/extension) and libraries. */
export function installDirs(binDir: string): InstallDirs {
  const pgConfig = join(binDir, "pg_config");
  if (existsSync(pgConfig)) {
    const r = Bun.spawnSync({ cmd: [pgConfig, "--sharedir", "--pkglibdir"], stdout: "pipe", stderr: "ignore" });
    const [share, lib] = r.stdout.toString().trim().split("\n");
    if (r.exitCode === 0 && share && lib) return { share: [share], lib: [lib] };
  }
  // Debian: /usr/lib/postgresql/15/{bin,lib} and /usr/share/postgresql/15; source installs: <prefix>/{bin,lib,share}.
  const prefix = dirname(binDir);
  const version = /\/postgresql\/([^/]+)$/.exec(prefix)?.[1];
  const share = [join(prefix, "share/postgresql"), join(prefix, "share")];
  if (version) share.unshift(join(dirname(dirname(dirname(prefix))), "share/postgresql", version));
  return { share, lib: [join(prefix, "lib"), join(prefix, "lib/postgresql")] };
}

/** The control file and the loader library (timescaledb.so) are both there. */
export function timescaleInstalled(dirs: InstallDirs): boolean {
  return (
    dirs.share.some((d) => existsSync(join(d, "extension", "timescaledb.control"))) &&
    dirs.lib.some((d) => existsSync(join(d, "timescaledb.so")))
  );
}

export function readMarker(dataDir: string): DataDirStorage | undefined {
  try {
    const text = readFileSync(join(dataDir, MARKER_FILE), "utf8").trim();
    return text === "timescaledb" || text === "postgresql" ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Decides, logs the decision and why, and records it in the data dir. */
export function supervisedPreload(opts: {
  binDir: string;
  dataDir: string;
  fresh: boolean;
  wanted: TimescaleWanted;
  user: { uid?: number; gid?: number };
  log: Logger;
}): PreloadPlan {
  const marker = readMarker(opts.dataDir);
  const installed = timescaleInstalled(installDirs(opts.binDir));
  const plan = planPreload({ installed, fresh: opts.fresh, marker, wanted: opts.wanted });
  if (plan.marker !== marker) {
    const file = join(opts.dataDir, MARKER_FILE);
    writeFileSync(file, `${plan.marker}\n`, { mode: 0o600 });
    if (opts.user.uid !== undefined) chownSync(file, opts.user.uid, opts.user.gid!);
  }
  const line = { preload: plan.preload, storage: plan.marker, reason: plan.reason };
  if (plan.warn) opts.log.warn(line, plan.preload ? "TimescaleDB preloaded" : "TimescaleDB not preloaded");
  else opts.log.info(line, plan.preload ? "TimescaleDB preloaded" : "TimescaleDB not preloaded");
  return plan;
}
