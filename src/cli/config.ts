import { defineCommand } from "citty";
import { describeConfig } from "../config/load.ts";
import { configOrExit, settingArgs } from "./common.ts";

export const config = defineCommand({
  meta: { name: "config", description: "Print the effective configuration (secrets hidden); exits 2 with one line per problem" },
  args: settingArgs(),
  run({ args }) {
    const cfg = configOrExit(args);
    process.stdout.write(describeConfig(cfg).join("\n") + "\n");
  },
});
