/**
 * The embedded nats-server's extraction (src/embedded/nats-binary.ts) from source: a copy of the
 * machine's nats-server is registered as "embedded", as the build's entry does in the executable.
 * test/integration/fresh-machine.test.ts covers the same through the compiled executable.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { registerEmbedded, type EmbeddedNatsServer } from "../../src/embedded/bundle.ts";
import {
  describeNatsServer,
  extractNatsServer,
  natsServerBinary,
  natsServerVersion,
  sha256Hex,
} from "../../src/embedded/nats-binary.ts";
import { findNatsServer } from "../../src/embedded/nats-server.ts";
import { pidAlive } from "../../src/embedded/process.ts";
import { check, startNats } from "../helpers/services.ts";

let work: string;
let nats: EmbeddedNatsServer;
const system = findNatsServer();

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "telemetry-natsbin-"));
  const carried = join(work, "carried-nats-server");
  copyFileSync(system, carried);
  const bytes = readFileSync(carried);
  nats = {
    path: carried,
    version: natsServerVersion(carried)!,
    sha256: sha256Hex(bytes),
    size: bytes.length,
    builtFrom: system,
  };
});

afterEach(() => registerEmbedded({}));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let dirs = 0;
const dataDir = () => join(work, `data-${++dirs}`);
const expectedName = () => `nats-server-${nats.version}-${nats.sha256.slice(0, 12)}`;

describe("extraction", () => {
  test("writes <data dir>/bin/nats-server-<version>-<sha12>, 0755 in a 0700 dir, the same bytes; runs", () => {
    const dir = dataDir();
    const path = extractNatsServer(nats, join(dir, "bin"));
    expect(path).toBe(join(dir, "bin", expectedName()));
    expect(statSync(join(dir, "bin")).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o755);
    expect(sha256Hex(readFileSync(path))).toBe(nats.sha256);
    expect(natsServerVersion(path)).toBe(nats.version);
  });

  test("a later start keeps an intact copy; a changed copy is written again", () => {
    const bin = join(dataDir(), "bin");
    const path = extractNatsServer(nats, bin);
    const first = statSync(path);
    expect(statSync(extractNatsServer(nats, bin)).ino).toBe(first.ino);
    writeFileSync(path, "#!/bin/sh\necho tampered\n");
    expect(extractNatsServer(nats, bin)).toBe(path);
    expect(sha256Hex(readFileSync(path))).toBe(nats.sha256);
  });

  test("a new embedded binary replaces the old one; temp files of dead extractions go", () => {
    const bin = join(dataDir(), "bin");
    mkdirSync(bin, { recursive: true, mode: 0o700 });
    const old = join(bin, "nats-server-2.9.9-0123456789ab");
    writeFileSync(old, "old", { mode: 0o755 });
    const deadTmp = join(bin, ".nats-server-999999999-abcd.tmp");
    writeFileSync(deadTmp, "partial");
    const path = extractNatsServer(nats, bin);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(deadTmp)).toBe(false);
    expect(existsSync(path)).toBe(true);
  });

  test("a damaged embedded binary is an error, and nothing is written", () => {
    const bin = join(dataDir(), "bin");
    expect(() => extractNatsServer({ ...nats, sha256: "0".repeat(64) }, bin)).toThrow(
      /embedded in this executable is damaged \(sha256 [0-9a-f]{64}, the build recorded 0{64}\)/,
    );
    expect(readdir(bin)).toEqual([]);
  });

  test("refuses a bin dir others can write, a symlinked one, and one under a non-sticky world-writable dir", () => {
    const open = join(dataDir(), "bin");
    mkdirSync(open, { recursive: true });
    chmodSync(open, 0o777);
    expect(() => extractNatsServer(nats, open)).toThrow(
      `refusing to run the embedded nats-server from ${open}: it is writable by its group or others (mode 0777; chmod 700 it)`,
    );

    const linked = join(dataDir(), "bin");
    mkdirSync(join(linked, ".."), { recursive: true });
    const target = mkdtempSync(join(work, "elsewhere-"));
    symlinkSync(target, linked);
    expect(() => extractNatsServer(nats, linked)).toThrow("it is not a directory (a symlink or a file)");

    const shared = mkdtempSync(join(work, "shared-"));
    chmodSync(shared, 0o777);
    const under = join(shared, "data", "bin");
    expect(() => extractNatsServer(nats, under)).toThrow(
      `${shared} above it is writable by its group or others and not sticky (mode 0777; chmod go-w it)`,
    );
    chmodSync(shared, 0o1777); // sticky, like /tmp: fine
    expect(existsSync(extractNatsServer(nats, under))).toBe(true);
    for (const dir of [open, target]) expect(readdir(dir)).toEqual([]);
  });

  test.if(process.getuid?.() === 0)("refuses a bin dir owned by another user", () => {
    const bin = join(dataDir(), "bin");
    mkdirSync(bin, { recursive: true, mode: 0o700 });
    chownSync(bin, 65534, 65534);
    expect(() => extractNatsServer(nats, bin)).toThrow("it is owned by uid 65534, not by us (uid 0)");
  });
});

describe("TELEMETRY_NATS_SERVER_BIN", () => {
  test("auto and embedded extract the embedded one; path and an absolute path use the machine's", () => {
    const dir = dataDir();
    expect(natsServerBinary("auto", dir)).toBe(system); // nothing embedded: as path
    expect(() => natsServerBinary("embedded", dir)).toThrow(
      "TELEMETRY_NATS_SERVER_BIN=embedded, but this telemetry carries no nats-server",
    );
    registerEmbedded({ natsServer: nats });
    expect(natsServerBinary("auto", dir)).toBe(join(dir, "bin", expectedName()));
    expect(natsServerBinary("embedded", dir)).toBe(join(dir, "bin", expectedName()));
    expect(natsServerBinary("path", dir)).toBe(system);
    expect(natsServerBinary(system, dir)).toBe(system);
    expect(() => natsServerBinary(join(work, "missing"), dir)).toThrow(
      `TELEMETRY_NATS_SERVER_BIN=${join(work, "missing")} is not an executable file`,
    );
    expect(describeNatsServer("auto")).toEqual({
      source: "embedded",
      path: system,
      version: nats.version,
      sha256: nats.sha256,
    });
    expect(describeNatsServer("path")).toEqual({ source: "path", path: system, version: nats.version });
  });

  test("a bad value is a configuration error", () => {
    expect(() => loadConfig({ "nats-server-bin": "nats-server" }, {})).toThrow(ConfigError);
    expect(() => loadConfig({}, { TELEMETRY_POSTGRES_BIN_DIR: "lib/pg" })).toThrow(
      /TELEMETRY_POSTGRES_BIN_DIR: must be auto, none or the absolute path/,
    );
    expect(loadConfig({}, {})).toMatchObject({ natsServerBin: "auto", postgresBinDir: "auto" });
  });

  test("an orphan of an extracted nats-server (named nats-server-<version>-<hash>) is stopped at start", async () => {
    await using local = await startNats();
    await local.kill();
    const extracted = extractNatsServer(nats, join(dataDir(), "bin"));
    const orphan = Bun.spawn({
      cmd: [extracted, "-c", join(local.storeDir, "nats-server.conf")],
      stdout: "ignore",
      stderr: "ignore",
    });
    try {
      await check(() => readFileSync(join(local.storeDir, "nats-server.pid"), "utf8").trim() === String(orphan.pid), {
        what: "the orphan's pid file",
      });
      await local.start();
      expect(pidAlive(orphan.pid)).toBe(false);
    } finally {
      orphan.kill("SIGKILL");
    }
  });
});

describe("npm run build (scripts/build.ts)", () => {
  test("a nats-server that is not there stops the build, saying so, before compiling", () => {
    const outfile = join(work, "never-built");
    const r = Bun.spawnSync({
      cmd: [process.execPath, "scripts/build.ts", "--nats-server", join(work, "missing"), "--outfile", outfile],
      cwd: join(import.meta.dir, "../.."),
      stderr: "pipe",
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toBe(`build: --nats-server ${join(work, "missing")} is not an executable file\n`);
    expect(existsSync(outfile)).toBe(false);
    expect(
      Array.from(new Bun.Glob("stage-*").scanSync({ cwd: join(import.meta.dir, "../../build"), onlyFiles: false })),
    ).toEqual([]); // its staging dir is gone
  });
});

function readdir(dir: string): string[] {
  return existsSync(dir) ? Array.from(new Bun.Glob("{*,.*}").scanSync({ cwd: dir, dot: true })) : [];
}
