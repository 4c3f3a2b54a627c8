/** Shared CLI plumbing: flags derived from the settings table, and config loading that exits cleanly. */
import type { ArgsDef } from "citty";
import { ConfigError, loadConfig, type Flags } from "../config/load.ts";
import { SETTINGS, type Config, type SettingKey } from "../config/schema.ts";
import { configureLogger } from "../lib/log.ts";

/** citty flag definitions for the given settings (all when omitted), described with env var and default. */
export function settingArgs(keys: readonly SettingKey[] = Object.keys(SETTINGS) as SettingKey[]): ArgsDef {
  const args: ArgsDef = {};
  for (const key of keys) {
    const s = SETTINGS[key];
    args[s.flag] = {
      type: "string",
      description: `${s.doc} [${s.env}, default: ${s.default === "" ? '""' : s.default}]`,
      valueHint: "value",
    };
  }
  return args;
}

/** Loads the configuration or prints one line per problem and exits with status 2. */
export function configOrExit(args: Flags): Config {
  try {
    const config = loadConfig(args);
    configureLogger(config.logLevel);
    return config;
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`telemetry: ${p}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Prints an error without a stack (for expected failures like a missing nats-server) and exits 1. */
export function fail(err: unknown): never {
  process.stderr.write(`telemetry: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
}
