// Exits 0 when node_modules holds every package of package-lock.json at its locked version (optional
// ones only if present), else 1 naming the first difference. scripts/setup.sh runs `npm ci` only then:
// an mtime comparison reinstalls (deleting node_modules, even through a symlink) whenever the lock
// file merely looks newer, e.g. in a fresh checkout or a git worktree.
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const root = join(__dirname, "..");
const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  if (path === "" || entry.link) continue;
  let installed;
  try {
    installed = JSON.parse(readFileSync(join(root, path, "package.json"), "utf8")).version;
  } catch {
    if (entry.optional) continue;
    console.error(`setup: ${path} is not installed`);
    process.exit(1);
  }
  if (installed !== entry.version) {
    console.error(`setup: ${path} is ${installed}, the lock file wants ${entry.version}`);
    process.exit(1);
  }
}
