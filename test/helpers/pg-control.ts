/**
 * PostgreSQL as a test sees it from outside: paused for real (SIGSTOP of the postmaster and its
 * backends: connections stay open and nothing answers, like a hung host), and the statements it
 * received, from its own statement log (`statementLogSettings`), to count real queries.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Settings for startPostgres: every statement logged, with its database, to <data dir>/log/pg.log. */
export const statementLogSettings = {
  logging_collector: "on",
  log_directory: "log",
  log_filename: "pg.log",
  log_statement: "all",
  log_line_prefix: "%d|",
};

function children(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {} // gone meanwhile
  }
  return out;
}

/** Stops the postmaster and all its processes; the returned function lets them go on. */
export function pausePostgres(postmaster: number): () => void {
  const pids = [...children(postmaster), postmaster];
  for (const pid of pids) process.kill(pid, "SIGSTOP");
  return () => {
    for (const pid of pids.reverse()) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {} // a backend may have exited
    }
  };
}

/**
 * The statements PostgreSQL received for `database` whose text contains `contains` (from the
 * statement log: simple and extended protocol both).
 */
export function statements(dataDir: string, database: string, contains: string): number {
  const file = join(dataDir, "log", "pg.log");
  if (!existsSync(file)) return 0;
  // Entries start at a line beginning with the prefix; the continuation lines of a statement are indented.
  const entries = readFileSync(file, "utf8").split(/\n(?=\S)/);
  const start = `${database}|LOG:  `;
  return entries.filter(
    (e) => e.startsWith(start) && /^(statement|execute [^:]*):/.test(e.slice(start.length)) && e.includes(contains),
  ).length;
}
