/**
 * The compiled executable, built once per test process by scripts/build.ts (what `npm run build`
 * runs: it embeds the machine's nats-server). `bun test` runs every file in one process, so the
 * files that need it share one build; the preload's afterAll removes it.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");
let built: Promise<string> | undefined;
let dir: string | undefined;

export function builtExecutable(): Promise<string> {
  built ??= build();
  return built;
}

async function build(): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), "telemetry-exe-"));
  chmodSync(dir, 0o755);
  const outfile = join(dir, "telemetry");
  const proc = Bun.spawn({
    cmd: [process.execPath, "scripts/build.ts", "--outfile", outfile],
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`scripts/build.ts failed (exit ${code}):\n${out}\n${err}`);
  return outfile;
}

/** For the preload's afterAll. */
export function removeBuiltExecutable(): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
  built = dir = undefined;
}
