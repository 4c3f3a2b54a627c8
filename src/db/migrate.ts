/**
 * Applies the embedded migrations once each, in one transaction under an advisory lock (several
 * processes may start at once), decides whether to use TimescaleDB, and sets its policies.
 *
 * TimescaleDB is decided from what the server reports (src/core/timescale.ts) before anything is
 * tried: CREATE EXTENSION without the preloaded library ends the connection with a FATAL, which no
 * savepoint can catch. When it is tried, it runs in a transaction of its own, before the migration
 * transaction, so a connection that dies only costs that attempt.
 */
import { createHash } from "node:crypto";
import type { Config } from "../config/schema.ts";
import { rollupRetentionMs } from "../core/retention.ts";
import {
  afterCreateFailed,
  decideMode,
  type ModeDecision,
  type ServerFacts,
  type TimescaleWanted,
} from "../core/timescale.ts";
import { logger } from "../lib/log.ts";
import type { Sql } from "./client.ts";
import { errorText } from "./errors.ts";
import { MIGRATIONS } from "./migrations.ts";
import { applyPolicies } from "./policies.ts";

const log = logger("migrate");
const LOCK_ID = 7_302_514_001; // arbitrary, constant: pg_advisory_xact_lock key for migrations

export type StorageMode = "timescaledb" | "postgresql";

export interface MigrateOptions {
  timescale: TimescaleWanted;
  retentionMs: number | null;
  /** Retention of the readings_1m rollups; null or absent keeps them. */
  rollupRetentionMs?: number | null;
  compressAfterMs: number;
}

export interface MigrateResult {
  mode: StorageMode;
  applied: string[];
}

export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

/** The options from the configuration. */
export function migrateOptions(
  config: Pick<Config, "timescale" | "retention" | "rollupRetention" | "compressAfter">,
): MigrateOptions {
  return {
    timescale: config.timescale,
    retentionMs: config.retention,
    rollupRetentionMs: rollupRetentionMs(config.retention, config.rollupRetention),
    compressAfterMs: config.compressAfter,
  };
}

const checksum = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);

export async function migrate(sql: Sql, opts: MigrateOptions): Promise<MigrateResult> {
  const mode = await chooseMode(sql, opts.timescale);
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_ID})`;
    await tx`CREATE TABLE IF NOT EXISTS telemetry_migrations (
      name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Map(
      (await tx`SELECT name, checksum FROM telemetry_migrations`).map((r) => [r.name as string, r.checksum as string]),
    );
    const applied: string[] = [];
    for (const m of MIGRATIONS) {
      if (m.when === "timescaledb" && mode !== "timescaledb") continue;
      const sum = checksum(m.sql);
      const previous = done.get(m.name);
      if (previous !== undefined) {
        if (previous !== sum)
          throw new MigrationError(
            `migration ${m.name} was changed after it was applied (checksum ${previous} -> ${sum})`,
          );
        continue;
      }
      await tx.unsafe(m.sql);
      await tx`INSERT INTO telemetry_migrations (name, checksum) VALUES (${m.name}, ${sum})`;
      applied.push(m.name);
    }
    await tx`INSERT INTO telemetry_meta (key, value) VALUES ('storage_mode', ${mode})
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`;
    if (mode === "timescaledb") {
      await applyPolicies(tx, [
        { table: "readings", compressAfterMs: opts.compressAfterMs, retentionMs: opts.retentionMs },
        { table: "readings_1m", compressAfterMs: opts.compressAfterMs, retentionMs: opts.rollupRetentionMs ?? null },
      ]);
    }
    if (applied.length > 0) log.info({ applied, mode }, "migrations applied");
    return { mode, applied };
  });
}

async function chooseMode(sql: Sql, wanted: TimescaleWanted): Promise<StorageMode> {
  if (wanted === "off") return "postgresql";
  let decision: ModeDecision = decideMode(wanted, await serverFacts(sql));
  if (decision.action === "create") {
    const failure = await createExtension(sql);
    decision = failure === null ? { action: "use" } : afterCreateFailed(wanted, failure);
  }
  switch (decision.action) {
    case "fail":
      throw new MigrationError(decision.message);
    case "plain":
      if (decision.warning) log.warn(decision.warning);
      return "postgresql";
    default:
      return "timescaledb";
  }
}

/** Harmless queries only: none of them loads the extension. */
async function serverFacts(sql: Sql): Promise<ServerFacts> {
  const [row] = await sql`
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS in_database,
           EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available,
           (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries') AS preload,
           EXISTS (SELECT 1 FROM pg_settings WHERE name LIKE 'timescaledb.%') AS settings_defined,
           version() AS version`;
  return {
    inDatabase: row!.in_database,
    available: row!.available,
    // Superuser-only: a role without pg_read_all_settings does not see it (the settings still tell).
    preloadLibraries: row!.preload ?? "(not visible to this role)",
    settingsDefined: row!.settings_defined,
    version: row!.version,
  };
}

/**
 * CREATE EXTENSION in a transaction of its own (a pool connection that dies with it is replaced);
 * returns why it failed, or null.
 */
async function createExtension(sql: Sql): Promise<string | null> {
  try {
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${LOCK_ID})`;
      await tx`CREATE EXTENSION IF NOT EXISTS timescaledb`;
    });
    return null;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const closed = code === "CONNECTION_CLOSED" || code === "CONNECTION_ENDED" || code === "57P01";
    return closed ? `the server ended the connection during CREATE EXTENSION: ${errorText(err)}` : errorText(err);
  }
}
