import { defineCommand } from "citty";
import { join } from "node:path";
import { describeConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { configOrExit, settingArgs } from "./common.ts";

/** Advice about a valid configuration: printed to stderr by `config check`, never changing its exit code. */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (!config.secretKey) {
    warnings.push(
      `channel secrets are encrypted with ${join(config.dataDir, "secret.key")} (TELEMETRY_SECRET_KEY is empty), which lives in the data dir: ` +
        "any copy of the data dir decrypts every channel secret in the database; in production set TELEMETRY_SECRET_KEY (openssl rand -base64 32) " +
        "from outside the data dir (e.g. the systemd EnvironmentFile, see the README)",
    );
  }
  return warnings;
}

/** `telemetry config [check]`: both print the effective configuration; a bad value exits 2 with one line per problem, a warning exits 0. */
export const config = defineCommand({
  meta: {
    name: "config",
    description:
      "Check and print the effective configuration (secrets hidden); exits 2 with one line per problem, warnings go to stderr",
  },
  args: {
    action: { type: "positional", required: false, description: "check (the default): validate, then print" },
    ...settingArgs(),
  },
  run({ args }) {
    if (args.action !== undefined && args.action !== "check") {
      process.stderr.write(`telemetry config: unknown action '${args.action}' (expected: check)\n`);
      process.exit(2);
    }
    const cfg = configOrExit(args);
    process.stdout.write(`${describeConfig(cfg).join("\n")}\n`);
    for (const w of configWarnings(cfg)) process.stderr.write(`telemetry: warning: ${w}\n`);
  },
});
