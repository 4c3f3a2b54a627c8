/** The help renderer (src/cli/usage.ts) and the colour rule (src/config/load.ts colourOutput), without a process. */
import { describe, expect, test } from "bun:test";
import { defineCommand } from "citty";
import { commandPath, usageText, wrapLine } from "../../src/cli/usage.ts";
import { colourOutput } from "../../src/config/load.ts";

const create = defineCommand({
  meta: { name: "create", description: "Create an API key" },
  args: {
    tenant: { type: "positional", required: true, description: "Tenant id" },
    name: { type: "string", description: "What the key is for, ".repeat(12).trim() },
  },
});
const keys = defineCommand({ meta: { name: "keys", description: "API keys" }, subCommands: { create } });
const root = defineCommand({
  meta: { name: "telemetry", version: "9.9.9", description: "root" },
  subCommands: { keys },
});

describe("colourOutput", () => {
  test("a terminal gets colours; a pipe, NO_COLOR (any non-empty value) or TERM=dumb do not", () => {
    expect(colourOutput({ isTTY: true }, {})).toBe(true);
    expect(colourOutput({ isTTY: false }, {})).toBe(false);
    expect(colourOutput({}, {})).toBe(false);
    expect(colourOutput({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(colourOutput({ isTTY: true }, { NO_COLOR: "yes" })).toBe(false);
    expect(colourOutput({ isTTY: true }, { NO_COLOR: "" })).toBe(true); // no-color.org: empty is unset
    expect(colourOutput({ isTTY: true }, { TERM: "dumb" })).toBe(false);
  });
});

describe("usage", () => {
  test("the path of a nested command from the root", async () => {
    expect(await commandPath(root, create)).toEqual(["telemetry", "keys", "create"]);
    expect(await commandPath(root, root)).toEqual(["telemetry"]);
  });

  test("plain: the whole command in USAGE, every line within the width, no escapes, nothing lost", async () => {
    const text = await usageText(root, create, { width: 60, colour: false });
    expect(text).toContain("USAGE telemetry keys create [OPTIONS] <TENANT>");
    expect(text).toContain("(telemetry keys create v9.9.9)");
    expect(text).not.toContain("\x1b[");
    for (const line of text.split("\n")) {
      expect(line.length).toBeLessThanOrEqual(60);
      expect(line).toBe(line.trimEnd());
    }
    expect(text.replace(/\s+/g, " ")).toContain("What the key is for, ".repeat(12).trim());
  });

  test("coloured on request, with the same words", async () => {
    const coloured = await usageText(root, create, { width: 60, colour: true });
    expect(coloured).toContain("\x1b[36m--name=<name>\x1b[39m");
    expect(Bun.stripANSI(coloured)).toBe(await usageText(root, create, { width: 60, colour: false }));
  });
});

describe("wrapLine", () => {
  test("a table row continues under its second column; a short line stays", () => {
    expect(wrapLine("  --a=<v>    one two three four", 30)).toEqual([
      "  --a=<v>    one two three",
      "             four",
    ]);
    expect(wrapLine("short", 20)).toEqual(["short"]);
  });

  test("a first column wider than half the width puts the text below it", () => {
    expect(wrapLine("  --a-very-long-flag=<value>  some words here", 30)).toEqual([
      "  --a-very-long-flag=<value>",
      "        some words here",
    ]);
  });
});
