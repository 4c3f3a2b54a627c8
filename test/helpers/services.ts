/**
 * Real nats-server and PostgreSQL processes for tests. Use `await using` so they stop and their temp
 * dirs go away even when a test throws. Safety nets, since `bun test` never emits process "exit":
 * the servers get a parent-death signal (they shut down when the test process dies), and temp dirs
 * left by dead test processes are removed on first use here.
 */
import { chmodSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalNats } from "../../src/embedded/nats-server.ts";
import { startLocalPostgres } from "../../src/embedded/postgres.ts";
import { pidAlive, waitFor } from "../../src/embedded/process.ts";
import type { LocalNats, LocalPostgres } from "../../src/embedded/types.ts";

export async function startNats(): Promise<LocalNats & { dir: string }> {
  const dir = await tempDir("telemetry-nats-");
  const nats = await startLocalNats({ storeDir: join(dir, "jetstream") }).catch(removeAndRethrow(dir));
  return withDir(nats, dir);
}

export async function startPostgres(
  opts: { port?: number; settings?: Record<string, string> } = {},
): Promise<LocalPostgres & { dir: string }> {
  const dir = await postgresTempDir();
  const pg = await startLocalPostgres({ dataDir: join(dir, "pgdata"), port: opts.port, settings: opts.settings }).catch(
    removeAndRethrow(dir),
  );
  return withDir(pg, dir);
}

let shared: Promise<LocalPostgres & { dir: string }> | undefined;

/** One PostgreSQL per test process, started on first use; stopSharedServices() ends it. */
export function sharedPostgres(): Promise<LocalPostgres> {
  shared ??= startPostgres();
  return shared;
}

/** For an afterAll() in the test preload (a module's own afterAll would run after the first test file only). */
export async function stopSharedServices(): Promise<void> {
  const pg = shared;
  shared = undefined;
  await (await pg?.catch(() => undefined))?.[Symbol.asyncDispose]();
}

let databases = 0;

/** URL of a brand-new, uniquely named database on the shared server. */
export async function freshDatabase(prefix = "t"): Promise<string> {
  const pg = await sharedPostgres();
  const name = `${prefix}_${process.pid}_${++databases}_${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
  await pg.createDatabase(name);
  return pg.urlFor(name);
}

/** Polls fn until it returns a truthy value, which it returns; on timeout throws naming `what` and the last value or error. */
export function check<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  return waitFor(fn, {
    timeoutMs: opts.timeoutMs ?? 10_000,
    intervalMs: opts.intervalMs ?? 50,
    what: opts.what ?? "condition",
  });
}

/** Readable by the `postgres` OS user when tests run as root (its data dir inside is 0700 anyway). */
async function postgresTempDir(): Promise<string> {
  const dir = await tempDir("telemetry-postgres-");
  chmodSync(dir, 0o755);
  return dir;
}

let swept = false;

/** `<tmp>/<prefix><pid>-XXXXXX`: the pid lets later runs find and remove dirs of dead test processes. */
async function tempDir(prefix: string): Promise<string> {
  if (!swept) {
    swept = true;
    await removeStaleTempDirs();
  }
  return mkdtemp(join(tmpdir(), `${prefix}${process.pid}-`));
}

async function removeStaleTempDirs(): Promise<void> {
  for (const entry of await readdir(tmpdir())) {
    const owner = /^telemetry-(?:nats|postgres|pgtree)-(\d+)-/.exec(entry)?.[1];
    if (!owner || pidAlive(Number(owner))) continue;
    const dir = join(tmpdir(), entry);
    const servers = [join(dir, "pgdata", "postmaster.pid"), join(dir, "jetstream", "nats-server.pid")];
    if (servers.some(pidFileIsLive)) continue; // still shutting down after its parent died
    await rm(dir, { recursive: true, force: true });
  }
}

function pidFileIsLive(file: string): boolean {
  try {
    return pidAlive(Number.parseInt(readFileSync(file, "utf8"), 10));
  } catch {
    return false;
  }
}

function withDir<S extends LocalNats | LocalPostgres>(service: S, dir: string): S & { dir: string } {
  return Object.defineProperties(service, {
    dir: { value: dir, enumerable: true },
    [Symbol.asyncDispose]: {
      value: async () => {
        try {
          await service.stop();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    },
  }) as S & { dir: string };
}

function removeAndRethrow(dir: string) {
  return async (err: unknown): Promise<never> => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  };
}
