/**
 * Which nats-server the supervised one is (TELEMETRY_NATS_SERVER_BIN): the one embedded in the
 * executable, extracted into `<data dir>/bin`, or one the machine has. An extracted copy is written
 * to a temp file in that directory, fsynced, checked against the SHA-256 the build recorded, made
 * executable and renamed into place; its name carries version and hash, so a new executable's
 * binary replaces it, and every start checks the copy again (a changed file is rewritten).
 * The directory must be ours and private: a place another user could write is refused.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { logger } from "../lib/log.ts";
import { embedded, type EmbeddedNatsServer } from "./bundle.ts";
import { findNatsServer } from "./nats-server.ts";
import { pidAlive } from "./process.ts";

const log = logger("nats-server");

/** auto | embedded | path | an absolute path (see the setting's doc in src/config/schema.ts). */
export type NatsServerSetting = string;

export interface NatsServerInfo {
  source: "embedded" | "path" | "setting";
  /** The binary to run; for an embedded one not yet extracted, where the executable carries it. */
  path: string;
  version?: string;
  sha256?: string;
}

/** The nats-server binary to run for `setting`, extracting the embedded one into `<dataDir>/bin` when it is chosen. */
export function natsServerBinary(setting: NatsServerSetting, dataDir: string): string {
  const nats = chosenEmbedded(setting);
  if (nats) return extractNatsServer(nats, join(dataDir, "bin"));
  return setting.startsWith("/") ? checkedBinary(setting) : findNatsServer();
}

/** What `setting` picks, without extracting anything (for `telemetry version`). */
export function describeNatsServer(setting: NatsServerSetting): NatsServerInfo {
  const nats = chosenEmbedded(setting);
  if (nats) return { source: "embedded", path: nats.builtFrom, version: nats.version, sha256: nats.sha256 };
  const path = setting.startsWith("/") ? checkedBinary(setting) : findNatsServer();
  return { source: setting.startsWith("/") ? "setting" : "path", path, version: natsServerVersion(path) };
}

function chosenEmbedded(setting: NatsServerSetting): EmbeddedNatsServer | undefined {
  const nats = embedded().natsServer;
  if (setting === "embedded" && !nats) {
    throw new Error(
      "TELEMETRY_NATS_SERVER_BIN=embedded, but this telemetry carries no nats-server (it runs from source, or was built with --no-nats-server); use auto, path or a binary's path",
    );
  }
  return setting === "auto" || setting === "embedded" ? nats : undefined;
}

function checkedBinary(path: string): string {
  try {
    const st = statSync(path);
    if (st.isFile() && (st.mode & 0o111) !== 0) return path;
  } catch {
    // reported below
  }
  throw new Error(`TELEMETRY_NATS_SERVER_BIN=${path} is not an executable file`);
}

/** "2.9.10" from `nats-server --version` ("nats-server: v2.9.10"), or undefined when it does not say. */
export function natsServerVersion(binary: string): string | undefined {
  const r = Bun.spawnSync({ cmd: [binary, "--version"], stdout: "pipe", stderr: "pipe", timeout: 10_000 });
  return /v?(\d+\.\d+\.\d+\S*)/.exec(r.stdout.toString() + r.stderr.toString())?.[1];
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Writes (or keeps, when intact) the embedded binary in binDir and returns its path. */
export function extractNatsServer(nats: EmbeddedNatsServer, binDir: string): string {
  assertPrivateDir(binDir);
  const target = join(binDir, `nats-server-${nats.version}-${nats.sha256.slice(0, 12)}`);
  if (intact(target, nats.sha256)) return target;
  const bytes = readFileSync(nats.path);
  const carried = sha256Hex(bytes);
  if (carried !== nats.sha256) {
    throw new Error(
      `the nats-server embedded in this executable is damaged (sha256 ${carried}, the build recorded ${nats.sha256}); build or download the executable again`,
    );
  }
  const tmp = join(binDir, `.nats-server-${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  try {
    writeDurably(tmp, bytes);
    const written = sha256Hex(readFileSync(tmp));
    if (written !== nats.sha256)
      throw new Error(
        `extracting nats-server to ${tmp}: the written file has sha256 ${written}, expected ${nats.sha256}`,
      );
    chmodSync(tmp, 0o755);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(binDir);
  removeStale(binDir, target);
  log.info({ path: target, version: nats.version }, "extracted the embedded nats-server");
  return target;
}

/** A regular file of ours, writable by nobody else, with the expected content. */
function intact(path: string, sha256: string): boolean {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return false;
  }
  const ours = st.isFile() && st.uid === process.getuid!() && (st.mode & 0o022) === 0;
  if (ours && sha256Hex(readFileSync(path)) === sha256) return true;
  log.warn({ path }, "the extracted nats-server was changed or is not ours; writing it again");
  return false;
}

function writeDurably(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o700);
  try {
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Other versions' binaries, and temp files of processes that died while extracting. */
function removeStale(binDir: string, keep: string): void {
  for (const name of readdirSync(binDir)) {
    const tmpOf = /^\.nats-server-(\d+)-[0-9a-f]+\.tmp$/.exec(name);
    const stale =
      (name.startsWith("nats-server-") && join(binDir, name) !== keep) || (tmpOf && !pidAlive(Number(tmpOf[1])));
    if (stale) rmSync(join(binDir, name), { force: true });
  }
}

/**
 * Creates binDir 0700 if missing; refuses it unless it is a real directory of ours that nobody
 * else can write, and unless every directory above it is owned by us or root and, when others
 * can write it, sticky (like /tmp): otherwise another user could swap the binary we run.
 */
export function assertPrivateDir(binDir: string): void {
  mkdirSync(dirname(binDir), { recursive: true });
  try {
    mkdirSync(binDir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  const uid = process.getuid!();
  const refuse = (why: string) =>
    new Error(
      `refusing to run the embedded nats-server from ${binDir}: ${why}; another user could replace the binary. Use a data dir only you (or root) can write, or set TELEMETRY_NATS_SERVER_BIN`,
    );
  const st = lstatSync(binDir);
  if (!st.isDirectory()) throw refuse("it is not a directory (a symlink or a file)");
  if (st.uid !== uid) throw refuse(`it is owned by uid ${st.uid}, not by us (uid ${uid})`);
  if (st.mode & 0o022) throw refuse(`it is writable by its group or others (mode ${octal(st.mode)}; chmod 700 it)`);
  for (let dir = dirname(realpathSync(binDir)); ; dir = dirname(dir)) {
    const up = statSync(dir);
    if (up.uid !== uid && up.uid !== 0)
      throw refuse(`${dir} above it is owned by uid ${up.uid}, neither us (uid ${uid}) nor root`);
    if (up.mode & 0o022 && !(up.mode & STICKY))
      throw refuse(
        `${dir} above it is writable by its group or others and not sticky (mode ${octal(up.mode)}; chmod go-w it)`,
      );
    if (dir === "/") return;
  }
}

const STICKY = 0o1000;
const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;
