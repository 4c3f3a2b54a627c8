/** Rewrites the configuration table of docs/configuration.md from the settings table: `bun scripts/sync-docs.ts`. */
import { readFileSync, writeFileSync } from "node:fs";
import { configTable } from "./config-table.ts";

const file = new URL("../docs/configuration.md", import.meta.url);
const page = readFileSync(file, "utf8");
const next = page.replace(
  /<!-- config-table:start -->\n[\s\S]*?<!-- config-table:end -->/,
  () => `<!-- config-table:start -->\n${configTable()}\n<!-- config-table:end -->`,
);
writeFileSync(file, next);
