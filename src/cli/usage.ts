/**
 * `--help` (and the usage shown with a usage error): citty's text, with the whole command path in
 * the USAGE line (`telemetry keys create`, where citty knows only the parent), trailing padding
 * removed, long lines wrapped under their column to the terminal's width (at most 100), and colours
 * only on a terminal without NO_COLOR.
 */
import { renderUsage, type CommandDef } from "citty";
import { stripVTControlCharacters } from "node:util";
import { colourOutput } from "../config/load.ts";

/** Any command of the tree, whatever its args. */
type Command = CommandDef<any>;

const MAX_WIDTH = 100;
const MIN_WIDTH = 60;

const resolve = async <T>(value: T | (() => T | Promise<T>) | Promise<T> | undefined): Promise<T | undefined> =>
  typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;

/** The names from the root to `target` (["telemetry", "keys", "create"]), or undefined when it is not in the tree. */
export async function commandPath(root: Command, target: Command): Promise<string[] | undefined> {
  const meta = await resolve(root.meta);
  const name = meta?.name ?? "telemetry";
  if (root === target) return [name];
  const subs = (await resolve(root.subCommands)) ?? {};
  for (const [key, sub] of Object.entries(subs)) {
    const below = await commandPath((await resolve(sub)) as Command, target);
    if (below) return [name, key, ...below.slice(1)];
  }
  return undefined;
}

/** Wraps one line to `width`; a row of a two-column table continues under its second column. */
export function wrapLine(line: string, width: number): string[] {
  if (line.length <= width) return [line];
  const row = /^(\s*\S.*?\s{2,})(\S.*)$/.exec(line);
  let head = row ? row[1]! : (/^\s*/.exec(line)?.[0] ?? "");
  const text = row ? row[2]! : line.slice(head.length);
  const out: string[] = [];
  let indent = head.length;
  if (indent > width / 2) {
    // A first column too wide to leave room: the text goes below it, indented a little.
    out.push(head.trimEnd());
    indent = Math.min(8, head.length);
    head = " ".repeat(indent);
  }
  let current = head;
  // A word wider than the line (the list of commands: a|b|c) may break after a `|`.
  const pieces = text
    .split(/ +/)
    .flatMap((w) => (w.length > width - indent ? w.split(/(?<=\|)/) : [w]).map((p, i) => ({ p, attached: i > 0 })));
  for (const { p: word, attached } of pieces) {
    const gap = current.length > indent && !attached ? " " : "";
    if (current.length > indent && current.length + gap.length + word.length > width) {
      out.push(current);
      current = " ".repeat(indent) + word;
    } else {
      current += gap + word;
    }
  }
  out.push(current);
  return out;
}

const SECTION = /^(USAGE|ARGUMENTS|OPTIONS|COMMANDS)\b(.*)$/;
const cyan = (t: string) => `\x1b[36m${t}\x1b[39m`;

/** Colours like citty's own, on one source line before it is wrapped: gray description, bold underlined section names, cyan names. */
function colourise(line: string, first: boolean, inTable: boolean): string {
  if (first) return `\x1b[90m${line}\x1b[39m`;
  const section = SECTION.exec(line);
  if (section) return `\x1b[4m\x1b[1m${section[1]}\x1b[22m\x1b[24m${section[2] ? cyan(section[2]) : ""}`;
  const row = inTable ? /^(\s+)(\S+(?:, \S+)*)(.*)$/.exec(line) : null;
  return row ? `${row[1]}${cyan(row[2]!)}${row[3]}` : line;
}

/** The usage text of `cmd` as the user typed it from `root`. */
export async function usageText(
  root: Command,
  cmd: Command,
  opts: { width: number; colour: boolean },
): Promise<string> {
  const path = (await commandPath(root, cmd)) ?? [(await resolve(cmd.meta))?.name ?? "telemetry"];
  const rootMeta = await resolve(root.meta);
  const parent =
    path.length > 1 ? { meta: { name: path.slice(0, -1).join(" "), version: rootMeta?.version } } : undefined;
  const plain = stripVTControlCharacters(await renderUsage(cmd, parent as Command | undefined));
  let inTable = false;
  return plain
    .split("\n")
    .flatMap((source, i) => {
      const lines = wrapLine(source.trimEnd(), opts.width);
      const section = SECTION.exec(source);
      if (section) inTable = section[1] !== "USAGE";
      if (!opts.colour) return lines;
      // Colour only the first piece's name: the escapes then never count towards the width.
      const [head, ...rest] = lines;
      return [
        colourise(head!, i === 0, inTable && !section && head!.trim() !== ""),
        ...rest.map((l) => (i === 0 ? colourise(l, true, false) : l)),
      ];
    })
    .join("\n");
}

/** For runMain's `showUsage`: prints to stdout, sized and coloured for it. */
export function showUsage(root: Command) {
  return async (cmd: Command): Promise<void> => {
    const width = Math.max(
      MIN_WIDTH,
      Math.min(MAX_WIDTH, process.stdout.isTTY ? process.stdout.columns || MAX_WIDTH : MAX_WIDTH),
    );
    process.stdout.write(`${await usageText(root, cmd, { width, colour: colourOutput(process.stdout) })}\n\n`);
  };
}
