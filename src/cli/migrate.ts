import { defineCommand } from "citty";
import { describeDatabase } from "../db/client.ts";
import { migrateOptions, migrate as runMigrations } from "../db/migrate.ts";
import { configOrExit, fail, settingArgs } from "./common.ts";
import { withDatabase } from "./services.ts";

/** The settings a command that migrates a database takes (migrate, migrate-to). */
export const MIGRATION_SETTINGS = [
  "databaseUrl",
  "dataDir",
  "timescale",
  "retention",
  "rollupRetention",
  "compressAfter",
  "logLevel",
] as const;

export const migrate = defineCommand({
  meta: { name: "migrate", description: "Apply pending database migrations and TimescaleDB policies, then exit" },
  args: settingArgs(MIGRATION_SETTINGS),
  async run({ args }) {
    const config = configOrExit(args);
    await withDatabase(config, async (sql, url) => {
      const r = await runMigrations(sql, migrateOptions(config));
      process.stdout.write(
        `${describeDatabase(url)}: ${r.applied.length ? `applied ${r.applied.join(", ")}` : "already up to date"} (storage: ${r.mode})\n`,
      );
    }).catch(fail);
  },
});
