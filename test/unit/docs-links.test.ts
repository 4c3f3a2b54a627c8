import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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
function slug(heading: string): string {
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

/** The links of a file whose target file or #anchor does not exist. */
function brokenLinks(file: string): string[] {
  const broken: string[] = [];
  for (const link of links(file)) {
    const [path, anchor] = link.split("#", 2) as [string, string | undefined];
    const target = path === "" ? file : resolve(dirname(file), decodeURI(path));
    if (!existsSync(target)) {
      broken.push(`${link}: no such file`);
      continue;
    }
    if (anchor !== undefined && !(statSync(target).isFile() && anchors(target).has(anchor)))
      broken.push(`${link}: no such anchor`);
  }
  return broken;
}

const files = [join(root, "README.md"), ...markdownFiles(join(root, "docs"))];

test("the slug rules follow GitHub's", () => {
  expect(slug("The key cache, and a database outage")).toBe("the-key-cache-and-a-database-outage");
  expect(slug("The fault suite (`test/fault`, part of `npm test`)")).toBe("the-fault-suite-testfault-part-of-npm-test");
  expect(slug("Failover, tested")).toBe("failover-tested");
  expect(slug("What changed, and what each change did")).toBe("what-changed-and-what-each-change-did");
});

test("a broken link or anchor is found, a good one is not", () => {
  const dir = mkdtempSync(join(tmpdir(), "docs-links-"));
  try {
    writeFileSync(join(dir, "other.md"), "# Other page\n\n## Part, one\n");
    const page = join(dir, "page.md");
    writeFileSync(
      page,
      "# Page\n\n## Twice\n\n## Twice\n\n[a](#page) [b](#twice-1) [c](other.md#part-one) [d](other.md) [e](https://example.org/x#y)\n" +
        "[f](#nope) [g](missing.md) [h](other.md#part) `[i](#in-code)`\n\n```\n[j](#in-a-fence)\n```\n",
    );
    expect(brokenLinks(page)).toEqual([
      "#nope: no such anchor",
      "missing.md: no such file",
      "other.md#part: no such anchor",
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("every relative link and anchor resolves", () => {
  for (const file of files) {
    test(relative(root, file), () => {
      const broken = brokenLinks(file);
      expect(broken).toEqual([]);
    });
  }
});
