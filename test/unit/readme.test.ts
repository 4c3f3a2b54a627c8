import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { configTable } from "../../scripts/config-table.ts";

test("the README's configuration table matches the settings table (fix: bun scripts/sync-readme.ts)", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const block = /<!-- config-table:start -->\n([\s\S]*?)<!-- config-table:end -->/.exec(readme)?.[1];
  expect(block?.trim()).toBe(configTable().trim());
});
