/**
 * A private copy of the PostgreSQL installation with a stand-in `timescaledb` extension, for the
 * TimescaleDB fallback tests. PostgreSQL finds its share and lib dirs relative to its own
 * executable, so a tree `<tmp>/<same absolute layout>` with copied binaries and symlinked files
 * is a separate installation: the stand-in exists only there, and no other test process (nor
 * the system's PostgreSQL) ever sees it. Removed by `await using`, even when a test fails.
 *
 * The stand-in's install script ends its own backend, as TimescaleDB's FATAL "extension must be
 * preloaded" does. With `library`, `timescaledb.so` is a link to PostgreSQL's own auto_explain.so:
 * a real library that `shared_preload_libraries=timescaledb` can load, and nothing more.
 */
import { chmodSync, copyFileSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findPostgresBinDir } from "../../src/embedded/postgres.ts";
import { installDirs } from "../../src/embedded/timescale-preload.ts";

export interface PostgresTree extends AsyncDisposable {
  root: string;
  binDir: string;
}

const BINARIES = ["postgres", "initdb", "pg_ctl", "pg_config"];

export async function postgresTreeWithStandIn(opts: { library: boolean }): Promise<PostgresTree> {
  const systemBin = findPostgresBinDir();
  const dirs = installDirs(systemBin);
  const [share, lib] = [dirs.share[0]!, dirs.lib[0]!];
  const root = await mkdtemp(join(tmpdir(), `telemetry-pgtree-${process.pid}-`));
  try {
    chmodSync(root, 0o755); // the postgres OS user runs these binaries when tests run as root
    const inTree = (path: string) => join(root, path);
    mkdirSync(inTree(systemBin), { recursive: true });
    for (const b of BINARIES) copyFileSync(join(systemBin, b), join(inTree(systemBin), b)); // copies: PostgreSQL resolves links to its executable
    linkEntries(share, inTree(share), ["extension"]);
    linkEntries(join(share, "extension"), inTree(join(share, "extension")));
    linkEntries(lib, inTree(lib));
    writeFileSync(
      join(inTree(share), "extension", "timescaledb.control"),
      "comment = 'test stand-in'\ndefault_version = '0.0.0'\nrelocatable = false\n",
    );
    writeFileSync(
      join(inTree(share), "extension", "timescaledb--0.0.0.sql"),
      "SELECT pg_terminate_backend(pg_backend_pid());\n",
    );
    if (opts.library) symlinkSync(join(lib, "auto_explain.so"), join(inTree(lib), "timescaledb.so"));
    chmodTree(root);
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    root,
    binDir: join(root, systemBin),
    [Symbol.asyncDispose]: () => rm(root, { recursive: true, force: true }),
  };
}

function linkEntries(from: string, to: string, except: string[] = []): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from)) if (!except.includes(entry)) symlinkSync(join(from, entry), join(to, entry));
}

function chmodTree(dir: string): void {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true }))
    if (entry.isDirectory()) chmodTree(join(dir, entry.name));
}
