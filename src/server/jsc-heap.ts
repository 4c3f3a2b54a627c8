/**
 * JavaScriptCore sizes its heap growth from the machine's RAM (23.5 GiB on the bench machine), so
 * a process allocating fast lets garbage pile up and then pays for it in long collections (and the
 * soft memory limit's forced ones). BUN_JSC_forceRAMSize makes it size for less, but Bun reads it
 * only when the process starts and offers no way to set it from JavaScript. So `serve` replaces
 * its own process image with the same executable, arguments and environment plus that variable
 * (execve: the same pid, stdio, data-dir claim and signal target, no parent left behind), before
 * anything is started. Decision 0540.
 */
import { jscRestartEnv } from "../config/load.ts";
import { logger } from "../lib/log.ts";

export interface ProcessImage {
  execPath: string;
  argv: string[];
  execArgv: string[];
  /** Bun.main: a path under /$bunfs/ (B:/~BUN/ on Windows) in a compiled executable. */
  main: string;
}

/** Whether this is a `bun build --compile` executable (its script lives in the embedded file system). */
export const isCompiled = (main: string) => /^(\/\$bunfs\/|[A-Za-z]:[\\/]~BUN[\\/])/.test(main);

/**
 * The argument vector that starts this same program again (pure). A script run by bun: the runtime's
 * own flags (execArgv), the script, its arguments. A compiled executable: its arguments only (its
 * argv[1] is the embedded script's virtual path, and it adds its baked-in runtime flags itself).
 */
export function restartArgv(p: ProcessImage): string[] {
  return isCompiled(p.main) ? [p.execPath, ...p.argv.slice(2)] : [p.execPath, ...p.execArgv, ...p.argv.slice(1)];
}

type Execve = (file: string, args: string[], env: Record<string, string>) => never;

/**
 * Re-executes this process with JavaScriptCore's heap sized for `ramBytes`, or returns when there
 * is nothing to do (the setting is off, the variable is set already) or the runtime has no execve.
 */
export function reexecWithJscRamSize(ramBytes: number, exec?: Execve): void {
  const env = jscRestartEnv(ramBytes);
  const execve = exec ?? (process as unknown as { execve?: Execve }).execve?.bind(process);
  if (!env || !execve) return;
  const image = { execPath: process.execPath, argv: process.argv, execArgv: process.execArgv, main: Bun.main };
  const argv = restartArgv(image);
  try {
    execve(argv[0]!, argv, env);
  } catch (err) {
    // The process goes on as it was: only its heap sizing differs.
    logger("server").warn({ err: (err as Error).message }, "could not re-execute with BUN_JSC_forceRAMSize");
  }
}
