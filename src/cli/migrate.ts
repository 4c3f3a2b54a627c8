import { defineCommand } from "citty";
import { join, resolve } from "node:path";
import { createSql, describeDatabase } from "../db/client.ts";
import { migrate as runMigrations } from "../db/migrate.ts";
import { startLocalPostgres } from "../embedded/postgres.ts";
import type { LocalPostgres } from "../embedded/types.ts";
import { configOrExit, fail, settingArgs } from "./common.ts";

export const migrate = defineCommand({
  meta: { name: "migrate", description: "Apply pending database migrations and TimescaleDB policies, then exit" },
  args: settingArgs(["databaseUrl", "dataDir", "timescale", "retention", "compressAfter", "logLevel"]),
  async run({ args }) {
    const config = configOrExit(args);
    let local: LocalPostgres | undefined;
    try {
      let url = config.databaseUrl;
      if (!url) {
        local = await startLocalPostgres({ dataDir: join(resolve(config.dataDir), "pg"), relocateIfUnreachable: true });
        url = local.url;
      }
      const sql = createSql(url, { max: 1, name: "migrate" });
      try {
        const r = await runMigrations(sql, { timescale: config.timescale, retentionMs: config.retention, compressAfterMs: config.compressAfter });
        process.stdout.write(
          `${describeDatabase(url)}: ${r.applied.length ? `applied ${r.applied.join(", ")}` : "already up to date"} (storage: ${r.mode})\n`,
        );
      } finally {
        await sql.end({ timeout: 5 });
      }
    } catch (err) {
      fail(err);
    } finally {
      await local?.stop();
    }
  },
});
