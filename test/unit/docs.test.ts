import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { configTable } from "../../scripts/config-table.ts";

test("docs/configuration.md's table matches the settings table (fix: bun scripts/sync-docs.ts)", () => {
  const page = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8");
  const block = /<!-- config-table:start -->\n([\s\S]*?)<!-- config-table:end -->/.exec(page)?.[1];
  expect(block?.trim()).toBe(configTable().trim());
});

test("the README stays short: at most 200 lines (the rest lives in docs/)", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  expect(readme.trimEnd().split("\n").length).toBeLessThanOrEqual(200);
});
