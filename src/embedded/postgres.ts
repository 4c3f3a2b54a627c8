/**
 * Runs and supervises a local PostgreSQL server. It listens on a unix socket in a 0700 directory of
 * the server user (only that user and root can connect; auth is "trust"), plus 127.0.0.1 if asked.
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import postgres from "postgres";
import { logger } from "../lib/log.ts";
import { assertPortFree } from "./ports.ts";
import {
  pidAlive,
  pidArgv,
  pidCommandLine,
  run,
  signalPid,
  Supervisor,
  terminatePid,
  waitFor,
  type SpawnOptions,
} from "./process.ts";
import { supervisedPreload } from "./timescale-preload.ts";
import type { LocalPostgres } from "./types.ts";
import type { TimescaleWanted } from "../core/timescale.ts";
import { findPostgresBinDir } from "./postgres-bin.ts";

export { findPostgresBinDir, locatePostgresBinDir } from "./postgres-bin.ts";

const log = logger("postgres");

const SOCKET_PORT = 5432;
const MAX_SOCKET_PATH = 107;
const DEFAULT_SETTINGS: Record<string, string> = {
  max_connections: "100",
  shared_buffers: "128MB",
  fsync: "on",
  log_min_messages: "warning",
  logging_collector: "off",
};

export interface LocalPostgresOptions {
  dataDir: string;
  /** Created if missing; default "telemetry". */
  database?: string;
  /** If > 0, also listen on 127.0.0.1:<port> and make `url` a TCP URL. */
  port?: number;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  /**
   * As root, PostgreSQL runs as the `postgres` OS user, which may not be able to reach dataDir
   * (e.g. under /root, mode 0700). When set, the data then lives in /var/lib/telemetry/pg-<hash>
   * and dataDir becomes a symlink to it; otherwise that case is an error.
   */
  relocateIfUnreachable?: boolean;
  /**
   * Preload TimescaleDB when that PostgreSQL has it installed: always for a new data dir (auto,
   * on), for one holding a plain database only when "on" (src/core/timescale.ts). Absent: never.
   */
  timescale?: TimescaleWanted;
  /** The PostgreSQL installation's bin dir; default findPostgresBinDir(). */
  binDir?: string;
}

interface ServerUser {
  uid?: number;
  gid?: number;
}

export async function startLocalPostgres(opts: LocalPostgresOptions): Promise<LocalPostgres> {
  const binDir = opts.binDir ?? findPostgresBinDir();
  const user = serverUser();
  const dataDir = opts.relocateIfUnreachable ? relocatedDataDir(resolve(opts.dataDir), user) : resolve(opts.dataDir);
  const database = opts.database ?? "telemetry";
  const tcpPort = opts.port && opts.port > 0 ? opts.port : undefined;
  const port = tcpPort ?? SOCKET_PORT;

  prepareDataDir(dataDir, user);
  const fresh = !existsSync(join(dataDir, "PG_VERSION"));
  if (fresh) await initdb(binDir, dataDir, user);
  const socketDir = prepareSocketDir(dataDir, port, user);
  const preload = opts.timescale
    ? supervisedPreload({ binDir, dataDir, fresh, wanted: opts.timescale, user, log }).preload
    : false;

  const settings = {
    ...DEFAULT_SETTINGS,
    listen_addresses: tcpPort ? "127.0.0.1" : "",
    ...(preload ? { shared_preload_libraries: "timescaledb" } : {}),
    ...opts.settings,
  };
  const urlFor = (db: string) =>
    tcpPort
      ? `postgres://postgres@127.0.0.1:${tcpPort}/${encodeURIComponent(db)}`
      : `postgres://postgres@localhost:${port}/${encodeURIComponent(db)}?host=${encodeURIComponent(socketDir)}`;
  const withSql = async <T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> => {
    const sql = postgres({
      host: socketDir,
      port,
      user: "postgres",
      database: "postgres",
      max: 1,
      connect_timeout: 5,
      onnotice: () => {},
    });
    try {
      return await fn(sql);
    } finally {
      await sql.end({ timeout: 1 });
    }
  };

  const supervisor = new Supervisor({
    name: "postgres",
    log,
    prepare: async () => {
      await stopLeftovers(dataDir, socketDir);
      if (tcpPort)
        await assertPortFree(
          "127.0.0.1",
          tcpPort,
          "the supervised PostgreSQL cannot start",
          "choose another PostgreSQL port or set DATABASE_URL to use that server on purpose",
        );
    },
    spawn: (): SpawnOptions => ({
      cmd: [
        join(binDir, "postgres"),
        "-D",
        dataDir,
        "-k",
        socketDir,
        "-p",
        String(port),
        ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
      ],
      cwd: dataDir,
      ...user,
      parentDeathSignal: "SIGINT",
      onLine: (line) => log.debug(line),
    }),
    ready: (signal, pid) =>
      waitFor(() => withSql((sql) => isOurServer(sql, dataDir, pid)), {
        timeoutMs: 120_000,
        intervalMs: 200,
        what: `the PostgreSQL we started (pid ${pid}) on ${socketDir}`,
        signal,
      }),
    stopSignal: "SIGINT",
    stopGraceMs: 30_000,
  });

  const createDatabase = (name: string) =>
    withSql(async (sql) => {
      const [exists] = await sql`select 1 from pg_database where datname = ${name}`;
      if (exists) return;
      await sql`create database ${sql(name)}`.catch((err: { code?: string }) => {
        if (err.code !== "42P04") throw err; // created concurrently
      });
    });

  await supervisor.start();
  await createDatabase(database).catch(async (err) => {
    await supervisor.stop();
    throw err;
  });
  log.info({ dataDir, socketDir, tcpPort, database, pid: supervisor.pid }, "local PostgreSQL started");

  return Object.assign(supervisor, { url: urlFor(database), urlFor, createDatabase, dataDir });
}

/** The server answering is the postmaster we spawned, on our data directory (not one that held the socket before). */
async function isOurServer(sql: postgres.Sql, dataDir: string, pid: number): Promise<boolean> {
  const [row] = await sql<{ dir: string }[]>`select current_setting('data_directory') as dir`;
  const postmaster = readPostmasterPid(dataDir);
  if (row?.dir !== dataDir || postmaster !== pid) {
    throw new Error(
      `another PostgreSQL answers (data directory ${row?.dir}, postmaster pid ${postmaster}), not the one we started (pid ${pid}, ${dataDir})`,
    );
  }
  return true;
}

/** PostgreSQL refuses to run as root: as root it runs as the `postgres` OS user, else as ourselves. */
function serverUser(): ServerUser {
  if (process.getuid?.() !== 0) return {};
  const entry = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((line) => line.split(":"))
    .find((fields) => fields[0] === "postgres");
  if (!entry)
    throw new Error(
      "running as root but there is no 'postgres' OS user to run PostgreSQL as; install the Debian package 'postgresql'",
    );
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

function prepareDataDir(dataDir: string, user: ServerUser): void {
  mkdirPrivate(dataDir);
  if (user.uid !== undefined && statSync(dataDir).uid !== user.uid) chownTree(dataDir, user);
  chmodSync(dataDir, 0o700);
  if (user.uid !== undefined && !reachableAs(dataDir, user)) {
    throw new Error(
      `the 'postgres' OS user cannot reach ${dataDir} (a parent directory lacks o+x); choose another --data-dir or set DATABASE_URL`,
    );
  }
}

/** The data dir to use: the requested one, or (root only) a reachable place it links to. */
function relocatedDataDir(requested: string, user: ServerUser): string {
  if (user.uid === undefined) return requested;
  if (existsSync(requested)) return realpathSync(requested);
  mkdirSync(dirname(requested), { recursive: true });
  if (reachableAs(dirname(requested), user)) return requested;
  const target = `/var/lib/telemetry/pg-${createHash("sha256").update(requested).digest("hex").slice(0, 12)}`;
  mkdirSync("/var/lib/telemetry", { recursive: true, mode: 0o755 });
  symlinkSync(target, requested);
  log.warn(
    { requested, target },
    "the postgres OS user cannot reach the data dir; PostgreSQL data lives in the target (linked from the data dir)",
  );
  return target;
}

/** Only the directory itself is 0700: recursive mkdir would give new parents that mode too, locking out the server user. */
function mkdirPrivate(dir: string): void {
  mkdirSync(dirname(dir), { recursive: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

function reachableAs(dir: string, user: ServerUser): boolean {
  return (
    Bun.spawnSync({ cmd: ["/bin/sh", "-c", 'cd -- "$1"', "sh", dir], uid: user.uid, gid: user.gid, cwd: "/" })
      .exitCode === 0
  );
}

function chownTree(path: string, user: ServerUser): void {
  lchownSync(path, user.uid!, user.gid!);
  if (!lstatSync(path).isDirectory()) return;
  for (const entry of readdirSync(path)) chownTree(join(path, entry), user);
}

async function initdb(binDir: string, dataDir: string, user: ServerUser): Promise<void> {
  log.info({ dataDir }, "initializing a new PostgreSQL data directory");
  await run({
    cmd: [
      join(binDir, "initdb"),
      "-D",
      dataDir,
      "--auth=trust",
      "--username=postgres",
      "--encoding=UTF8",
      "--locale=C",
      "--no-instructions",
    ],
    cwd: dataDir,
    ...user,
  });
}

/** `<dataDir>-socket`, or a short directory under /tmp when the socket path would exceed the unix limit. */
function prepareSocketDir(dataDir: string, port: number, user: ServerUser): string {
  let dir = `${dataDir}-socket`;
  if (Buffer.byteLength(join(dir, `.s.PGSQL.${port}`)) > MAX_SOCKET_PATH) {
    dir = `/tmp/telemetry-pg-${createHash("sha256").update(dataDir).digest("hex").slice(0, 8)}`;
  }
  mkdirPrivate(dir);
  const stat = lstatSync(dir);
  if (!stat.isDirectory()) throw new Error(`PostgreSQL socket directory ${dir} is not a directory`);
  const owner = user.uid ?? process.getuid?.();
  // As root we created it (owned by root) and hand it over; anyone else's directory is refused.
  if (user.uid !== undefined && stat.uid === 0) chownSync(dir, user.uid, user.gid!);
  else if (stat.uid !== owner) throw new Error(`PostgreSQL socket directory ${dir} belongs to another user`);
  chmodSync(dir, 0o700);
  return dir;
}

/**
 * A crashed parent may have left its postmaster running, and a SIGKILLed postmaster leaves backends
 * behind for a moment; both hold the data directory (and its shared memory), so PostgreSQL would
 * refuse to start until they are gone. Only a postmaster we started (its socket directory is ours)
 * is stopped: any other one holding the data directory is an error naming it.
 */
async function stopLeftovers(dataDir: string, socketDir: string): Promise<void> {
  const postmaster = readPostmasterPid(dataDir);
  if (postmaster && isPostgres(postmaster)) {
    if (!pidArgv(postmaster).includes(socketDir)) {
      throw new Error(
        `the supervised PostgreSQL cannot start: data dir ${dataDir} is in use by another PostgreSQL server, pid ${postmaster} (${pidCommandLine(postmaster)}), not started by telemetry; stop it, use another --data-dir, or set DATABASE_URL to use that server on purpose`,
      );
    }
    log.warn({ pid: postmaster }, "stopping a PostgreSQL server left running by a previous process");
    await terminatePid(postmaster, "SIGINT", 30_000);
  }
  const real = realpathSync(dataDir);
  const leftovers = () => processesWithCwd(real);
  if (leftovers().length === 0) return;
  try {
    await waitFor(() => leftovers().length === 0, {
      timeoutMs: 5_000,
      what: `old PostgreSQL processes in ${dataDir} to exit`,
    });
  } catch {
    const pids = leftovers();
    log.warn({ pids }, "killing leftover PostgreSQL processes");
    for (const pid of pids) signalPid(pid, "SIGKILL");
    await waitFor(() => leftovers().length === 0, {
      timeoutMs: 10_000,
      what: `old PostgreSQL processes in ${dataDir} to die`,
    });
  }
}

function readPostmasterPid(dataDir: string): number | undefined {
  try {
    return Number.parseInt(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0] ?? "", 10) || undefined;
  } catch {
    return undefined;
  }
}

function processesWithCwd(dir: string): number[] {
  return safeReaddir("/proc")
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((entry) => {
      try {
        return readlinkSync(`/proc/${entry}/cwd`) === dir && isPostgres(Number(entry));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** A postmaster ("/usr/lib/postgresql/15/bin/postgres -D ...") or a backend ("postgres: checkpointer"). */
function isPostgres(pid: number): boolean {
  const program = pidCommandLine(pid).split(" ")[0] ?? "";
  return pidAlive(pid) && /^postgres:?$/.test(basename(program));
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
