import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { JSC_RAM_ENV, jscRestartEnv, loadConfig, startEnvNames } from "../../src/config/load.ts";
import { isCompiled, restartArgv } from "../../src/server/jsc-heap.ts";

const MiB = 2 ** 20;

test("TELEMETRY_JSC_RAM_SIZE: 512 MiB by default, a size, or off", () => {
  expect(loadConfig({}, {}).jscRamSize).toBe(512 * MiB);
  expect(loadConfig({}, { TELEMETRY_JSC_RAM_SIZE: "off" }).jscRamSize).toBe(0);
  expect(loadConfig({ "jsc-ram-size": "1GiB" }, {}).jscRamSize).toBe(1024 * MiB);
  expect(() => loadConfig({}, { TELEMETRY_JSC_RAM_SIZE: "big" })).toThrow(/TELEMETRY_JSC_RAM_SIZE/);
});

test("the restart environment adds the option to the whole environment, never when off or already set", () => {
  expect(jscRestartEnv(512 * MiB, { PATH: "/bin", X: undefined })).toEqual({
    PATH: "/bin",
    [JSC_RAM_ENV]: "536870912",
  });
  expect(jscRestartEnv(0, { PATH: "/bin" })).toBeNull();
  expect(jscRestartEnv(512 * MiB, { [JSC_RAM_ENV]: "1073741824" }, new Set([JSC_RAM_ENV]))).toBeNull(); // the operator's, or our own re-execution's
});

test("a BUN_JSC_forceRAMSize only a .env file set (not in the start environment) is applied by re-executing with it", () => {
  const fromDotEnv = { PATH: "/bin", [JSC_RAM_ENV]: "268435456" };
  const started = new Set(["PATH"]);
  expect(jscRestartEnv(512 * MiB, fromDotEnv, started)).toEqual(fromDotEnv); // its value, not the setting's
  expect(jscRestartEnv(0, fromDotEnv, started)).toEqual(fromDotEnv); // even with TELEMETRY_JSC_RAM_SIZE=off
  expect(jscRestartEnv(512 * MiB, fromDotEnv, new Set(["PATH", JSC_RAM_ENV]))).toBeNull(); // started with it
  expect(jscRestartEnv(512 * MiB, fromDotEnv, null)).toBeNull(); // start environment unknown: as before
  expect(jscRestartEnv(512 * MiB, { PATH: "/bin" }, started)).toEqual({ PATH: "/bin", [JSC_RAM_ENV]: "536870912" });
});

test("startEnvNames reads this process's start environment (Linux), null where it cannot", () => {
  const names = startEnvNames();
  if (process.platform === "linux") expect(names?.has("PATH")).toBe(true);
  expect(startEnvNames("/nonexistent/environ")).toBeNull();
});

test("the restart argv: bun's flags and the script for a script, only the arguments for a compiled executable", () => {
  const script = {
    execPath: "/usr/bin/bun",
    argv: ["/usr/bin/bun", "/app/src/cli/main.ts", "serve", "--port", "0"],
    execArgv: ["--smol"],
    main: "/app/src/cli/main.ts",
  };
  expect(restartArgv(script)).toEqual(["/usr/bin/bun", "--smol", "/app/src/cli/main.ts", "serve", "--port", "0"]);
  const compiled = {
    execPath: "/opt/telemetry",
    argv: ["bun", "/$bunfs/root/telemetry", "serve"],
    execArgv: [],
    main: "/$bunfs/root/telemetry",
  };
  expect(isCompiled(compiled.main)).toBe(true);
  expect(isCompiled("B:/~BUN/root/telemetry.exe")).toBe(true);
  expect(isCompiled(script.main)).toBe(false);
  expect(restartArgv(compiled)).toEqual(["/opt/telemetry", "serve"]);
});

test("a real re-execution: same pid, arguments and stdout, the option set, once; off or preset: none", () => {
  const dir = mkdtempSync(join(tmpdir(), "jsc-heap-"));
  try {
    const script = join(dir, "probe.ts");
    const module = resolve(import.meta.dir, "../../src/server/jsc-heap.ts");
    writeFileSync(
      script,
      `import { reexecWithJscRamSize } from ${JSON.stringify(module)};
console.log(JSON.stringify({ pid: process.pid, ram: process.env.${JSC_RAM_ENV} ?? null, args: process.argv.slice(2) }));
reexecWithJscRamSize(Number(process.argv[2]));
`,
    );
    const run = (ram: number, env: Record<string, string> = {}) => {
      const r = Bun.spawnSync({
        cmd: [process.execPath, script, String(ram), "a b"],
        env: { PATH: process.env.PATH!, ...env },
      });
      expect(r.exitCode).toBe(0);
      return r.stdout
        .toString()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
    };
    const [before, after, ...more] = run(256 * MiB);
    expect(more).toEqual([]);
    expect(before).toMatchObject({ ram: null, args: ["268435456", "a b"] });
    expect(after).toEqual({ pid: before.pid, ram: "268435456", args: ["268435456", "a b"] });
    expect(run(0)).toHaveLength(1);
    expect(run(256 * MiB, { [JSC_RAM_ENV]: "1073741824" })).toEqual([expect.objectContaining({ ram: "1073741824" })]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
