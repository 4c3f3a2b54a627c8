/**
 * `npm run build`: the one executable, dist/telemetry (`bun build --compile --minify --sourcemap`),
 * carrying this machine's nats-server and the license texts of what it embeds.
 *
 *   bun scripts/build.ts [--outfile dist/telemetry] [--nats-server <path>] [--nats-license <file>] [--no-nats-server]
 *
 * The nats-server is the one on PATH (or /usr/sbin, /usr/local/bin), e.g. Debian's package; its
 * license text is its Debian copyright file plus the full texts it names from
 * /usr/share/common-licenses. Without a nats-server the build fails, unless --no-nats-server asks for
 * an executable that uses the machine's nats-server at run time. The nats-server binary and the
 * generated modules live in build/stage-* (gitignored) only while the build runs.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { natsServerVersion, sha256Hex } from "../src/embedded/nats-binary.ts";
import { findNatsServer } from "../src/embedded/nats-server.ts";
import { npmLicenses } from "./build-licenses.ts";

const root = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  options: {
    outfile: { type: "string", default: "dist/telemetry" },
    "nats-server": { type: "string" },
    "nats-license": { type: "string" },
    "no-nats-server": { type: "boolean", default: false },
  },
});

interface StagedNats {
  file: string;
  version: string;
  sha256: string;
  size: number;
  builtFrom: string;
  license: string;
}

class BuildError extends Error {}

/** Stops the build with one line (the stage dir is removed on the way out). */
function die(message: string): never {
  throw new BuildError(message);
}

function findBinary(): string {
  const given = opts["nats-server"];
  if (given) {
    if (!existsSync(given) || !statSync(given).isFile() || (statSync(given).mode & 0o111) === 0)
      die(`--nats-server ${given} is not an executable file`);
    return realpathSync(given);
  }
  try {
    return realpathSync(findNatsServer());
  } catch {
    die(
      "no nats-server on PATH, in /usr/sbin or /usr/local/bin to embed: install Debian's nats-server (apt-get install nats-server), pass --nats-server <path>, or --no-nats-server for an executable that needs one on the machine",
    );
  }
}

/** The Debian package's copyright file of `binary` (dpkg -S), with the full texts of the licenses it names. */
function licenseText(binary: string): string {
  let file = opts["nats-license"];
  if (!file) {
    const owner = Bun.spawnSync({ cmd: ["dpkg", "-S", binary], stdout: "pipe", stderr: "pipe" });
    const pkg = owner.exitCode === 0 ? owner.stdout.toString().split(":")[0]!.trim() : undefined;
    file = pkg && existsSync(`/usr/share/doc/${pkg}/copyright`) ? `/usr/share/doc/${pkg}/copyright` : undefined;
  }
  if (!file)
    die(
      `no license text for ${binary} (not from a Debian package with /usr/share/doc/<package>/copyright): pass --nats-license <file>`,
    );
  const copyright = readFileSync(file, "utf8");
  const named = [...new Set([...copyright.matchAll(/^License:\s*(\S+)\s*$/gm)].map((m) => m[1]!))];
  const full = named.filter((id) => existsSync(`/usr/share/common-licenses/${id}`));
  return [
    copyright.trimEnd(),
    ...full.map(
      (id) =>
        `\n--- ${id}, the full text (/usr/share/common-licenses/${id}) ---\n\n${readFileSync(`/usr/share/common-licenses/${id}`, "utf8").trimEnd()}`,
    ),
  ].join("\n");
}

function stageNats(stage: string): StagedNats | undefined {
  if (opts["no-nats-server"]) return undefined;
  const binary = findBinary();
  const version = natsServerVersion(binary) ?? die(`${binary} --version printed no version`);
  const bytes = readFileSync(binary);
  const file = join(stage, "nats-server");
  copyFileSync(binary, file);
  return {
    file,
    version,
    sha256: sha256Hex(bytes),
    size: bytes.length,
    builtFrom: binary,
    license: licenseText(binary),
  };
}

function licensesFile(nats: StagedNats | undefined, npm: string): string {
  const parts = ["Licenses of what this telemetry executable embeds.", ""];
  parts.push(
    "The executable is a copy of the Bun runtime (MIT; it contains JavaScriptCore and other libraries, see https://bun.sh/docs/project/licensing).",
  );
  if (nats)
    parts.push(
      "",
      `=== nats-server ${nats.version} (built from ${nats.builtFrom}, sha256 ${nats.sha256}) ===`,
      "",
      nats.license,
    );
  parts.push("", npm);
  return `${parts.join("\n").trimEnd()}\n`;
}

/** The build's entry: registers what is embedded (first import), then runs the CLI. */
function writeEntry(stage: string, nats: StagedNats | undefined): string {
  const rel = (path: string) => JSON.stringify(`./${relative(stage, path)}`);
  const src = (path: string) => JSON.stringify(relative(stage, join(root, path)));
  const meta = nats && { version: nats.version, sha256: nats.sha256, size: nats.size, builtFrom: nats.builtFrom };
  writeFileSync(
    join(stage, "embedded.ts"),
    [
      `import { registerEmbedded } from ${src("src/embedded/bundle.ts")};`,
      `import licensesPath from ${rel(join(stage, "LICENSES.txt"))} with { type: "file" };`,
      ...(nats ? [`import natsPath from ${rel(nats.file)} with { type: "file" };`] : []),
      `registerEmbedded({ licensesPath${nats ? `, natsServer: { path: natsPath, ...${JSON.stringify(meta)} }` : ""} });`,
      "",
    ].join("\n"),
  );
  const entry = join(stage, "entry.ts");
  writeFileSync(entry, `import "./embedded.ts";\nimport ${src("src/cli/main.ts")};\n`);
  return entry;
}

async function main(): Promise<void> {
  const outfile = resolve(root, opts.outfile);
  mkdirSync(join(root, "build"), { recursive: true });
  const stage = mkdtempSync(join(root, "build", "stage-"));
  try {
    const nats = stageNats(stage);
    const npm = await npmLicenses(root, join(root, "src/cli/main.ts"));
    writeFileSync(join(stage, "LICENSES.txt"), licensesFile(nats, npm.text));
    const entry = writeEntry(stage, nats);
    mkdirSync(dirname(outfile), { recursive: true });
    const build = Bun.spawnSync({
      cmd: [process.execPath, "build", "--compile", "--minify", "--sourcemap", entry, "--outfile", outfile],
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    });
    if (build.exitCode !== 0) die(`bun build failed (exit ${build.exitCode})`);
    const mib = (statSync(outfile).size / 1_048_576).toFixed(1);
    const carried = nats
      ? `nats-server ${nats.version} from ${nats.builtFrom} (sha256 ${nats.sha256.slice(0, 12)}…)`
      : "no nats-server (--no-nats-server: it needs one on the machine)";
    const shown = relative(process.cwd(), outfile).startsWith("..") ? outfile : relative(process.cwd(), outfile);
    process.stdout.write(
      `build: ${shown}: ${mib} MiB, embeds ${carried} and the licenses of ${npm.packages} npm packages\n`,
    );
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

await main().catch((err) => {
  if (!(err instanceof BuildError)) throw err;
  process.stderr.write(`build: ${err.message}\n`);
  process.exit(1);
});
