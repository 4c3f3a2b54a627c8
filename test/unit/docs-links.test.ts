import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/** Every relative link and #anchor in README.md and docs/**\/*.md resolves (anchors by GitHub's slug rules). */
const root = resolve(import.meta.dir, "../..");

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? markdownFiles(join(dir, e.name)) : e.name.endsWith(".md") ? [join(dir, e.name)] : [],
  );
}

/** The text outside fenced code blocks and inline code spans. */
function prose(text: string): string[] {
  let fenced = false;
  return text.split("\n").map((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line.replace(/`[^`]*`/g, "``");
  });
}

/** GitHub's heading anchor: lowercase, punctuation removed, each space a '-', repeats numbered -1, -2, ... */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1] as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function links(file: string): string[] {
  const found: string[] = [];
  for (const line of prose(readFileSync(file, "utf8"))) {
    for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) found.push(m[1] as string);
  }
  return found.filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l));
}

const files = [join(root, "README.md"), ...markdownFiles(join(root, "docs"))];

test("the slug rules follow GitHub's", () => {
  expect(slug("The key cache, and a database outage")).toBe("the-key-cache-and-a-database-outage");
  expect(slug("The fault suite (`test/fault`, part of `npm test`)")).toBe("the-fault-suite-testfault-part-of-npm-test");
  expect(slug("Failover, tested")).toBe("failover-tested");
  expect(slug("What changed, and what each change did")).toBe("what-changed-and-what-each-change-did");
});

test("a broken link or anchor is found", () => {
  const own = anchors(join(root, "README.md"));
  expect(own.has("no-such-heading-here")).toBe(false);
  expect(existsSync(join(root, "docs/no-such-page.md"))).toBe(false);
});

describe("every relative link and anchor resolves", () => {
  for (const file of files) {
    test(relative(root, file), () => {
      const broken: string[] = [];
      for (const link of links(file)) {
        const [path, anchor] = link.split("#", 2) as [string, string | undefined];
        const target = path === "" ? file : resolve(dirname(file), decodeURI(path));
        if (!existsSync(target)) {
          broken.push(`${link}: no such file`);
          continue;
        }
        if (anchor !== undefined && !(statSync(target).isFile() && anchors(target).has(anchor))) broken.push(`${link}: no such anchor`);
      }
      expect(broken).toEqual([]);
    });
  }
});
