import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { createSql, describeDatabase } from "../db/client.ts";
import { copyDatabase } from "../db/copy.ts";
import { migrateOptions, migrate as runMigrations } from "../db/migrate.ts";
import { claimDataDir, runningServer } from "../server/runtime.ts";
import { embeddedDataDir } from "../server/services.ts";
import { configOrExit, fail, settingArgs } from "./common.ts";
import { MIGRATION_SETTINGS } from "./migrate.ts";

export const migrateTo = defineCommand({
  meta: {
    name: "migrate-to",
    description:
      "Move the embedded database's data (<data dir>/pglite) to a PostgreSQL: migrates it, copies every table (idempotent: re-run after an interruption), checks the row counts. Stop the server first; afterwards start it with DATABASE_URL",
  },
  args: settingArgs(MIGRATION_SETTINGS),
  async run({ args }) {
    const config = configOrExit(args);
    await moveEmbedded(config).catch(fail);
  },
});

async function moveEmbedded(config: ReturnType<typeof configOrExit>): Promise<void> {
  if (!config.databaseUrl)
    throw new Error("give the target PostgreSQL with --database-url postgres://... (or DATABASE_URL)");
  const dataDir = resolve(config.dataDir);
  const pgliteDir = embeddedDataDir(dataDir);
  if (!existsSync(join(pgliteDir, "PG_VERSION"))) throw new Error(`no embedded database in ${pgliteDir}`);
  const owner = runningServer(dataDir);
  if (owner)
    throw new Error(`the server (pid ${owner.pid}) is using ${dataDir}; stop it first, then run migrate-to again`);
  const claim = claimDataDir(dataDir);
  const { startEmbeddedDatabase } = await import("../embedded/pglite.ts");
  const embedded = await startEmbeddedDatabase({ dataDir: pgliteDir });
  const source = createSql(embedded.url, { max: 1, name: "migrate-to-source" });
  const target = createSql(config.databaseUrl, { max: 1, name: "migrate-to" });
  const out = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const [fromVersion] =
      await source`SELECT name FROM telemetry_migrations ORDER BY applied_at DESC, name DESC LIMIT 1`.catch(() => []);
    if (!fromVersion) throw new Error(`the embedded database in ${pgliteDir} was never migrated: nothing to move`);
    const m = await runMigrations(target, migrateOptions(config));
    out(
      `${describeDatabase(config.databaseUrl)}: ${m.applied.length ? `applied ${m.applied.join(", ")}` : "migrations up to date"} (storage: ${m.mode})`,
    );
    const copies = await copyDatabase(source, target);
    const width = Math.max(...copies.map((c) => c.table.length));
    out(`${"table".padEnd(width)}  ${"embedded".padStart(10)}  ${"target".padStart(10)}  ${"copied now".padStart(10)}`);
    for (const c of copies)
      out(
        `${c.table.padEnd(width)}  ${String(c.source).padStart(10)}  ${String(c.target).padStart(10)}  ${String(c.inserted).padStart(10)}`,
      );
    const differ = copies.filter((c) => c.source !== c.target);
    if (differ.length > 0) {
      throw new Error(
        `row counts differ in ${differ.map((c) => `${c.table} (embedded ${c.source}, target ${c.target})`).join(", ")}: the target held other data before; move into an empty database`,
      );
    }
    out(
      `all ${copies.length} tables moved. Start the server with DATABASE_URL set to this database; ${pgliteDir} is left as it was (remove it once satisfied).`,
    );
  } finally {
    await source.end({ timeout: 5 });
    await target.end({ timeout: 5 });
    await embedded.stop();
    claim.release();
  }
}
