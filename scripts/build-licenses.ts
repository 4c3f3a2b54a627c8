/**
 * The license texts of the npm packages the executable's bundle holds: the packages whose files a
 * bundle of `entry` reads (Bun.build's metafile), each with its LICENSE/COPYING/NOTICE files, or,
 * when a package ships none, the license its package.json names.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface Package {
  name: string;
  version: string;
  license: string;
  texts: { file: string; text: string }[];
}

/** node_modules/<name> or node_modules/@scope/<name> dirs (the innermost node_modules) of the bundle's inputs. */
function packageDirs(inputs: string[]): string[] {
  const dirs = new Set<string>();
  for (const input of inputs) {
    const at = input.lastIndexOf("node_modules/");
    if (at < 0) continue;
    const rest = input.slice(at + "node_modules/".length).split("/");
    const name = rest[0]!.startsWith("@") ? rest.slice(0, 2).join("/") : rest[0]!;
    dirs.add(`${input.slice(0, at)}node_modules/${name}`);
  }
  return [...dirs];
}

function readPackage(dir: string): Package {
  const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
    name: string;
    version: string;
    license?: string | { type?: string };
  };
  const license = typeof meta.license === "string" ? meta.license : (meta.license?.type ?? "(not stated)");
  const files = readdirSync(dir)
    .filter((f) => /^(licen[cs]e|copying|notice)([._-].*)?$/i.test(f))
    .sort();
  return {
    name: meta.name,
    version: meta.version,
    license,
    texts: files.map((file) => ({ file, text: readFileSync(join(dir, file), "utf8").trimEnd() })),
  };
}

/**
 * Prebuilt browser bundles the executable embeds as text (the dashboard's map): they carry their
 * npm dependencies inside, which the metafile cannot see, so those are listed too (all of them,
 * transitively: a superset of what the bundle kept).
 */
const PREBUILT = ["@geoman-io/leaflet-geoman-free"];

function withBundledDeps(root: string, dirs: string[]): string[] {
  const out = new Set(dirs);
  const queue = dirs.filter((d) => PREBUILT.some((name) => d.endsWith(`node_modules/${name}`)));
  while (queue.length) {
    const dir = queue.shift()!;
    const deps = Object.keys(JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).dependencies ?? {});
    for (const name of deps) {
      const found = [join(dir, "node_modules", name), join(root, "node_modules", name)].find((d) =>
        existsSync(join(d, "package.json")),
      );
      if (found && !out.has(found)) {
        out.add(found);
        queue.push(found);
      }
    }
  }
  return [...out];
}

export async function npmLicenses(root: string, entry: string): Promise<{ text: string; packages: number }> {
  const probe = await Bun.build({ entrypoints: [entry], target: "bun", metafile: true, root });
  if (!probe.success || !probe.metafile)
    throw new Error(`bundling ${entry} to list its packages failed: ${probe.logs.join("\n")}`);
  const dirs = packageDirs(Object.keys(probe.metafile.inputs)).map((d) => (d.startsWith("/") ? d : join(root, d)));
  const packages = withBundledDeps(
    root,
    dirs.filter((d) => existsSync(join(d, "package.json"))),
  ).map(readPackage);
  packages.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
  const unique = packages.filter(
    (p, i) => i === 0 || p.name !== packages[i - 1]!.name || p.version !== packages[i - 1]!.version,
  );
  const list = unique.map((p) => `  ${p.name} ${p.version} (${p.license})`);
  const sections = unique.map((p) => {
    const body = p.texts.length
      ? p.texts.map((t) => `--- ${t.file} ---\n\n${t.text}`).join("\n\n")
      : `(the package ships no license file; its package.json says: ${p.license})`;
    return `=== ${p.name} ${p.version} (${p.license}) ===\n\n${body}`;
  });
  return {
    text: [`=== npm packages in the bundle (${unique.length}) ===`, "", ...list, "", ...sections].join("\n"),
    packages: unique.length,
  };
}
