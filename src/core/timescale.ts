/**
 * TimescaleDB decisions, made from facts only (no I/O), before anything is tried: loading the
 * extension without the preloaded library ends the connection (`FATAL: extension "timescaledb"
 * must be preloaded`), so no attempt may be made that only an error could undo.
 */

export type TimescaleWanted = "auto" | "on" | "off";

/** The fix named in every message about a TimescaleDB that is installed but unusable. */
export const PRELOAD_FIX =
  "add timescaledb to shared_preload_libraries in postgresql.conf (shared_preload_libraries = 'timescaledb'), restart PostgreSQL, then run `telemetry migrate`";

export interface ServerFacts {
  /** The extension exists in this database (pg_extension). */
  inDatabase: boolean;
  /** The server has its files (pg_available_extensions). */
  available: boolean;
  /** shared_preload_libraries, as the server reports it. */
  preloadLibraries: string;
  /** Some `timescaledb.*` setting is defined (only the loaded library defines them). */
  settingsDefined: boolean;
  /** version(): a single-process WebAssembly build (PGlite) loads extensions without preloading. */
  version: string;
}

export type ModeDecision =
  | { action: "use" }
  | { action: "create" }
  | { action: "plain"; warning?: string }
  | { action: "fail"; message: string };

/** Whether shared_preload_libraries lists timescaledb (names may be quoted, paths or `$libdir/...`). */
export function listsTimescale(libraries: string): boolean {
  return libraries
    .split(",")
    .map((name) => name.trim().replace(/^"|"$/g, ""))
    .some((name) => /(^|\/)timescaledb(\.so)?$/.test(name));
}

export function isPreloaded(facts: ServerFacts): boolean {
  return listsTimescale(facts.preloadLibraries) || facts.settingsDefined || /emscripten/i.test(facts.version);
}

/** What migrate does with TimescaleDB, decided before it touches the extension. */
export function decideMode(wanted: TimescaleWanted, facts: ServerFacts): ModeDecision {
  if (wanted === "off") return { action: "plain" };
  const preloaded = isPreloaded(facts);
  const libs = `shared_preload_libraries = '${facts.preloadLibraries}'`;
  if (facts.inDatabase) {
    if (preloaded) return { action: "use" };
    return {
      action: "fail",
      message: `this database has the timescaledb extension but the server does not preload it (${libs}), so it cannot be used; ${PRELOAD_FIX}`,
    };
  }
  if (!facts.available) {
    if (wanted === "on")
      return {
        action: "fail",
        message: "TELEMETRY_TIMESCALE=on but the timescaledb extension is not installed on this PostgreSQL server",
      };
    return { action: "plain" };
  }
  if (!preloaded) {
    const why = `the timescaledb extension is installed but not preloaded (${libs})`;
    if (wanted === "on") return { action: "fail", message: `TELEMETRY_TIMESCALE=on but ${why}; ${PRELOAD_FIX}` };
    return { action: "plain", warning: `${why}; using plain PostgreSQL. To use TimescaleDB: ${PRELOAD_FIX}` };
  }
  return { action: "create" };
}

/** After `CREATE EXTENSION` failed (or its connection died): plain PostgreSQL in auto, an error in on. */
export function afterCreateFailed(wanted: TimescaleWanted, reason: string): ModeDecision {
  const why = `the timescaledb extension could not be enabled (${reason})`;
  const fix =
    "check the PostgreSQL log; the extension needs shared_preload_libraries = 'timescaledb' and a restart, then `telemetry migrate`";
  if (wanted === "on") return { action: "fail", message: `TELEMETRY_TIMESCALE=on but ${why}; ${fix}` };
  return { action: "plain", warning: `${why}; using plain PostgreSQL. To use TimescaleDB: ${fix}` };
}

/** What the data dir of the supervised PostgreSQL was made for (a marker file written at initdb). */
export type DataDirStorage = "timescaledb" | "postgresql";

export interface PreloadFacts {
  /** The extension's control file and library exist in that PostgreSQL installation. */
  installed: boolean;
  /** No PostgreSQL data dir yet: initdb follows. */
  fresh: boolean;
  /** The data dir's marker; undefined for a data dir made before markers existed (plain). */
  marker: DataDirStorage | undefined;
  wanted: TimescaleWanted;
}

export interface PreloadPlan {
  preload: boolean;
  /** The marker the data dir carries from now on. */
  marker: DataDirStorage;
  reason: string;
  /** Worth a warning (the operator may want to act), not just an info line. */
  warn: boolean;
}

/**
 * Whether the supervised PostgreSQL starts with shared_preload_libraries=timescaledb. A new data
 * dir gets TimescaleDB whenever it is installed; one that already holds a plain database stays
 * plain until the operator migrates it on purpose (TELEMETRY_TIMESCALE=on).
 */
export function planPreload(f: PreloadFacts): PreloadPlan {
  const plan = (preload: boolean, marker: DataDirStorage, reason: string, warn = false) => ({
    preload,
    marker,
    reason,
    warn,
  });
  if (f.marker === "timescaledb") {
    if (f.installed) return plan(true, "timescaledb", "the data dir was made for TimescaleDB");
    return plan(
      false,
      "timescaledb",
      "the data dir was made for TimescaleDB but the timescaledb extension is no longer installed in this PostgreSQL; install it again",
      true,
    );
  }
  if (!f.installed)
    return plan(false, f.marker ?? "postgresql", "the timescaledb extension is not installed in this PostgreSQL");
  if (f.fresh) {
    if (f.wanted === "off") return plan(false, "postgresql", "TELEMETRY_TIMESCALE=off");
    return plan(true, "timescaledb", "the timescaledb extension is installed and the data dir is new");
  }
  if (f.wanted === "on")
    return plan(true, "timescaledb", "TELEMETRY_TIMESCALE=on: moving the plain PostgreSQL data dir to TimescaleDB");
  return plan(
    false,
    "postgresql",
    "the timescaledb extension is installed, but this data dir holds a plain PostgreSQL database and stays plain; to move it to TimescaleDB, stop the server and run `telemetry migrate --timescale on` once",
    true,
  );
}
