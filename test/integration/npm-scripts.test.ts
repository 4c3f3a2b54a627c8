/**
 * The package.json scripts a newcomer and CI use: `npm start` stops, children and all, when npm is
 * sent SIGTERM; `npm test` (scripts/test.sh) runs every stage after a failure (except after a failed
 * setup), reports which ran, passed, failed and were skipped, and ends with the summed bun counts.
 */
import { describe, expect, test } from "bun:test";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
  chmodSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pidAlive, signalPid } from "../../src/embedded/process.ts";
import { check } from "../helpers/services.ts";

const root = join(import.meta.dir, "../..");

/** Every live descendant of `pid`, from /proc (children of children included). */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parentOf.set(ppid, [...(parentOf.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const child of parentOf.get(p) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

describe("npm start", () => {
  test("SIGTERM to npm's pid stops the server and its nats-server and PostgreSQL", async () => {
    // setup.sh must be a no-op here: an `npm ci` would replace node_modules (through a symlink, too).
    const deps = Bun.spawnSync({ cmd: ["node", "scripts/npm-deps-ok.cjs"], cwd: root, stderr: "pipe" });
    if (deps.exitCode !== 0)
      throw new Error(
        `npm dependencies differ from package-lock.json; run npm ci first (${deps.stderr.toString().trim()})`,
      );

    const dir = mkdtempSync(join(tmpdir(), "telemetry-npm-start-"));
    chmodSync(dir, 0o755); // the postgres OS user must reach the data dir when tests run as root
    const npm = Bun.spawn({
      cmd: ["npm", "start"],
      cwd: root,
      env: {
        PATH: process.env.PATH!,
        HOME: process.env.HOME ?? dir,
        TELEMETRY_DATA_DIR: join(dir, "data"),
        PORT: "0",
        HOST: "127.0.0.1",
        TELEMETRY_NATS_PORT: "0",
        LOG_LEVEL: "info",
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    let output = "";
    void (async () => {
      for await (const chunk of npm.stdout) output += new TextDecoder().decode(chunk);
    })();
    let tree: number[] = [];
    try {
      await check(() => output.includes('"msg":"telemetry serving"'), {
        what: "the serving line",
        timeoutMs: 120_000,
        intervalMs: 200,
      });
      tree = descendants(npm.pid);
      const commands = tree.map((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " "));
      expect(commands.some((c) => c.includes("nats-server"))).toBe(true);
      expect(commands.some((c) => /postgres -D/.test(c))).toBe(true);

      process.kill(npm.pid, "SIGTERM");
      const left = await check(() => (tree.every((pid) => !pidAlive(pid)) && !pidAlive(npm.pid) ? "none" : false), {
        what: "npm and all its children to exit",
        timeoutMs: 30_000,
        intervalMs: 200,
      }).catch(() =>
        tree.filter(pidAlive).map((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")),
      );
      expect(left).toBe("none");
      expect(output).toContain('"msg":"stopped"');
    } finally {
      for (const pid of [npm.pid, ...tree]) if (pidAlive(pid)) signalPid(pid, "SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe("npm test (scripts/test.sh)", () => {
  /** A throwaway project: test.sh, a given setup.sh, a type error, and tiny bun test stages. */
  function fixture(setup: string): string {
    const dir = mkdtempSync(join(tmpdir(), "telemetry-test-sh-"));
    try {
      build(dir, setup);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return dir;
  }

  function build(dir: string, setup: string): void {
    mkdirSync(join(dir, "scripts"));
    copyFileSync(join(root, "scripts/test.sh"), join(dir, "scripts/test.sh"));
    writeFileSync(join(dir, "scripts/setup.sh"), setup);
    symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, types: [] }, files: ["bad.ts"] }),
    );
    writeFileSync(join(dir, "bad.ts"), "export const n: number = 'not a number';\n");
    writeFileSync(
      join(dir, "biome.json"),
      JSON.stringify({ formatter: { enabled: false }, assist: { enabled: false } }),
    ); // the lint stage: lint rules only
    const stage = (sub: string, body: string) => {
      mkdirSync(join(dir, "test", sub), { recursive: true });
      writeFileSync(join(dir, "test", sub, "x.test.ts"), `import { expect, test } from "bun:test";\n${body}\n`);
    };
    stage("unit", 'test("a", () => expect(1).toBe(1));\ntest("b", () => expect(2).toBe(2));');
    stage("integration", 'test("c", () => expect(1).toBe(2));');
    stage("fault", 'test("d", () => expect(1).toBe(1));');
    stage("cluster", 'test("e", () => expect(1).toBe(1));');
  }

  const runIn = (dir: string, stages: string[] = []) => {
    const r = Bun.spawnSync({
      cmd: ["bash", "scripts/test.sh", ...stages],
      cwd: dir,
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? dir },
      stdout: "pipe",
      stderr: "pipe",
    });
    return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
  };

  test("a failing stage does not stop the later ones; the summary names each and ends with the summed counts", () => {
    const dir = fixture("echo setup ok\n");
    try {
      const { code, out } = runIn(dir);
      expect(code).toBe(1);
      const summary = out.slice(out.lastIndexOf("=== test stages"));
      expect(summary).toMatch(/setup +passed/);
      expect(summary).toMatch(/lint +passed/);
      expect(summary).toMatch(/tsc +FAILED \(exit [1-9]/);
      expect(summary).toMatch(/unit\+integration +FAILED \(exit 1, \d+s, 2 pass, 1 fail\)/);
      expect(summary).toMatch(/fault +passed \(\d+s, 1 pass, 0 fail\)/);
      expect(summary).toMatch(/cluster +passed \(\d+s, 1 pass, 0 fail\)/);
      expect(out.trimEnd().split("\n").at(-1)).toBe("4 passed, 1 failed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  test("a failed setup skips the rest, and says so", () => {
    const dir = fixture("echo no packages >&2\nexit 3\n");
    try {
      const { code, out } = runIn(dir);
      expect(code).toBe(1);
      expect(out).toMatch(/setup +FAILED \(exit 3/);
      for (const stage of ["lint", "tsc", "unit\\+integration", "fault", "cluster"])
        expect(out).toMatch(new RegExp(`${stage} +skipped \\(setup failed\\)`));
      expect(out.trimEnd().split("\n").at(-1)).toBe("0 passed, 0 failed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("named stages only (npm run test:cluster runs setup and cluster)", () => {
    const dir = fixture("echo setup ok\n");
    try {
      const { code, out } = runIn(dir, ["setup", "cluster"]);
      expect(code).toBe(0);
      expect(out).toMatch(/cluster +passed \(\d+s, 1 pass, 0 fail\)/);
      for (const stage of ["lint", "tsc", "unit\\+integration", "fault"])
        expect(out).toMatch(new RegExp(`${stage} +skipped \\(not selected\\)`));
      expect(out.trimEnd().split("\n").at(-1)).toBe("1 passed, 0 failed");
      expect(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts["test:cluster"]).toBe(
        "bash scripts/test.sh setup cluster",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
