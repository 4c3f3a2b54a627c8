/** Rewrites the README's configuration table from the settings table: `bun scripts/sync-readme.ts`. */
import { readFileSync, writeFileSync } from "node:fs";
import { configTable } from "./config-table.ts";

const file = new URL("../README.md", import.meta.url);
const readme = readFileSync(file, "utf8");
const next = readme.replace(/<!-- config-table:start -->\n[\s\S]*?<!-- config-table:end -->/, () => `<!-- config-table:start -->\n${configTable()}\n<!-- config-table:end -->`);
writeFileSync(file, next);
