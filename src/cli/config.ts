import { defineCommand } from "citty";
import { describeConfig } from "../config/load.ts";
import { configOrExit, settingArgs } from "./common.ts";

/** `telemetry config [check]`: both print the effective configuration; a bad value exits 2 with one line per problem. */
export const config = defineCommand({
  meta: { name: "config", description: "Check and print the effective configuration (secrets hidden); exits 2 with one line per problem" },
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
    process.stdout.write(describeConfig(cfg).join("\n") + "\n");
  },
});
