/** Where PostgreSQL's server binaries are (TELEMETRY_POSTGRES_BIN_DIR). */
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { findExecutable } from "./process.ts";

const NOT_FOUND =
  "PostgreSQL server not found; install the Debian package 'postgresql' (apt-get install postgresql) or set DATABASE_URL";

const SERVER_TOOLS = ["postgres", "initdb", "pg_ctl"];

/**
 * The bin dir of the PostgreSQL server binaries `setting` (TELEMETRY_POSTGRES_BIN_DIR) points to,
 * or undefined when there are none: "auto" searches PATH, then the newest
 * /usr/lib/postgresql/<version>/bin; "none" finds nothing (a machine without them); a directory
 * must hold them (else an error: a configured place that is wrong is not "none").
 */
export function locatePostgresBinDir(setting = "auto"): string | undefined {
  const complete = (dir: string) => SERVER_TOOLS.every((tool) => existsSync(join(dir, tool)));
  if (setting === "none") return undefined;
  if (setting !== "auto") {
    if (complete(setting)) return setting;
    throw new Error(
      `TELEMETRY_POSTGRES_BIN_DIR=${setting} does not hold PostgreSQL's server binaries (${SERVER_TOOLS.join(", ")})`,
    );
  }
  const onPath = findExecutable("postgres");
  if (onPath) {
    const dir = dirname(realpathSync(onPath));
    if (complete(dir)) return dir;
  }
  const versions = safeReaddir("/usr/lib/postgresql")
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  return versions.map((version) => `/usr/lib/postgresql/${version}/bin`).find(complete);
}

/** locatePostgresBinDir, or the error naming the package to install. */
export function findPostgresBinDir(setting = "auto"): string {
  const dir = locatePostgresBinDir(setting);
  if (!dir)
    throw new Error(
      setting === "none"
        ? `${NOT_FOUND} (TELEMETRY_POSTGRES_BIN_DIR=none: no local PostgreSQL binaries are used)`
        : NOT_FOUND,
    );
  return dir;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
