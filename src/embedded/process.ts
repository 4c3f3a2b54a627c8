/** Helpers for running and supervising local server processes (nats-server, PostgreSQL). */
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import type { Subprocess } from "bun";
import type { Logger } from "../lib/log.ts";
import { sleep } from "../lib/backoff.ts";

export function findExecutable(name: string, extraDirs: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), ...extraDirs].filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("could not determine a free port"))));
    });
  });
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  what: string;
  /** Gives up at once (throwing the abort reason), e.g. when the process being waited for exits. */
  signal?: AbortSignal;
}

/** Polls `check` until it returns a truthy value (returned); a throwing check counts as "not yet". */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    opts.signal?.throwIfAborted();
    if (Date.now() >= deadline) {
      const seen = last instanceof Error ? `last error: ${last.message}` : `last value: ${String(last)}`;
      throw new Error(`timed out after ${opts.timeoutMs}ms waiting for ${opts.what} (${seen})`);
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/** True if the pid exists and is not a zombie (an orphan's zombie may never be reaped in a container). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export function pidCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

/** The pid's argv (empty when it is gone or not ours to read). */
export function pidArgv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Sends `signal`, waits up to graceMs for the pid to disappear, then SIGKILLs it and waits again. */
export async function terminatePid(pid: number, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  signalPid(pid, signal);
  try {
    await waitFor(() => !pidAlive(pid), { timeoutMs: graceMs, what: `pid ${pid} to exit` });
  } catch {
    signalPid(pid, "SIGKILL");
    await waitFor(() => !pidAlive(pid), { timeoutMs: 10_000, what: `pid ${pid} to exit after SIGKILL` });
  }
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.killGroupNow();
});

const TAIL_LINES = 50;

export interface SpawnOptions {
  cmd: string[];
  /** Sent to the child if this process dies, even by SIGKILL (via setpriv --pdeathsig, when installed). */
  parentDeathSignal?: NodeJS.Signals;
  cwd?: string;
  env?: Record<string, string | undefined>;
  uid?: number;
  gid?: number;
  onLine?: (line: string) => void;
}

/**
 * A child in its own session/process group (so a Ctrl-C aimed at the parent does not hit it and
 * SIGKILL can take its whole family), with the tail of its output kept for error messages.
 */
export class ChildProcess {
  readonly exited: Promise<void>;
  private readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  private readonly lines: string[] = [];
  private done = false;

  constructor(opts: SpawnOptions) {
    const setpriv = opts.parentDeathSignal && findExecutable("setpriv");
    this.proc = Bun.spawn({
      cmd: setpriv ? [setpriv, "--pdeathsig", opts.parentDeathSignal!, "--", ...opts.cmd] : opts.cmd,
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      uid: opts.uid,
      gid: opts.gid,
      detached: true,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    live.add(this);
    const drained = Promise.all([
      this.collect(this.proc.stdout, opts.onLine),
      this.collect(this.proc.stderr, opts.onLine),
    ]);
    this.exited = this.proc.exited.then(async () => {
      this.done = true;
      live.delete(this);
      await Promise.race([drained, sleep(1_000)]);
    });
  }

  get pid(): number {
    return this.proc.pid;
  }

  get alive(): boolean {
    return !this.done;
  }

  /** e.g. "exit code 1" or "signal SIGKILL" */
  get exitStatus(): string {
    return this.proc.signalCode ? `signal ${this.proc.signalCode}` : `exit code ${this.proc.exitCode}`;
  }

  output(): string {
    return this.lines.join("\n");
  }

  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<void> {
    if (!this.done) {
      signalPid(this.pid, signal);
      const timer = setTimeout(() => this.killGroupNow(), graceMs);
      await this.proc.exited;
      clearTimeout(timer);
    }
    await this.exited;
  }

  /** SIGKILLs the whole process group (the child and anything it forked). */
  async kill(): Promise<void> {
    this.killGroupNow();
    await this.exited;
  }

  killGroupNow(): void {
    signalPid(-this.pid, "SIGKILL");
    signalPid(this.pid, "SIGKILL");
  }

  private async collect(stream: ReadableStream<Uint8Array>, onLine?: (line: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    const push = (line: string) => {
      if (!line) return;
      this.lines.push(line);
      if (this.lines.length > TAIL_LINES) this.lines.shift();
      onLine?.(line);
    };
    for await (const chunk of stream) {
      const parts = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = parts.pop() ?? "";
      parts.forEach(push);
    }
    push(partial);
  }
}

/** Runs a command to completion; throws with its output unless it exits 0. */
export async function run(opts: SpawnOptions): Promise<string> {
  const child = new ChildProcess(opts);
  await child.exited;
  if (child.exitStatus !== "exit code 0") {
    throw new Error(`${opts.cmd.join(" ")} failed (${child.exitStatus})\n--- output ---\n${child.output()}`);
  }
  return child.output();
}

export interface SupervisorOptions {
  name: string;
  log: Logger;
  /** Clears leftovers (e.g. an orphan of a crashed parent) before every spawn. */
  prepare: () => Promise<void>;
  spawn: () => SpawnOptions;
  /**
   * Resolves once the child serves requests and is verified to be the one answering (not another
   * server on the same port or socket); `signal` aborts if the child exits meanwhile.
   */
  ready: (signal: AbortSignal, pid: number) => Promise<unknown>;
  stopSignal: NodeJS.Signals;
  stopGraceMs: number;
}

/** Keeps one child running: restarts it with backoff when it exits without stop()/kill(). */
export class Supervisor {
  private child: ChildProcess | undefined;
  private wanted = false;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private starting: Promise<void> | undefined;

  constructor(private readonly opts: SupervisorOptions) {}

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child?.alive ?? false;
  }

  start(): Promise<void> {
    this.wanted = true;
    clearTimeout(this.timer);
    return this.launch();
  }

  async stop(): Promise<void> {
    await this.halt();
    await this.child?.stop(this.opts.stopSignal, this.opts.stopGraceMs);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async kill(): Promise<void> {
    await this.halt();
    await this.child?.kill();
  }

  private async halt(): Promise<void> {
    this.wanted = false;
    clearTimeout(this.timer);
    await this.starting?.catch(() => {});
  }

  private launch(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.starting ??= this.spawnReady().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async spawnReady(): Promise<void> {
    await this.opts.prepare();
    const child = new ChildProcess(this.opts.spawn());
    const died = new AbortController();
    void child.exited.then(() =>
      died.abort(new Error(`${this.opts.name} exited during startup (${child.exitStatus})`)),
    );
    try {
      await this.opts.ready(died.signal, child.pid);
    } catch (err) {
      await child.kill();
      const output = child.output();
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}${output ? `\n--- output ---\n${output}` : ""}`,
      );
    }
    this.child = child;
    const startedAt = Date.now();
    void child.exited.then(() => {
      if (child !== this.child || !this.wanted) return;
      if (Date.now() - startedAt > 60_000) this.failures = 0;
      this.scheduleRestart(`exited unexpectedly (${child.exitStatus})`, child.output());
    });
  }

  private scheduleRestart(reason: string, output: string): void {
    const delayMs = Math.min(500 * 2 ** this.failures++, 10_000);
    this.opts.log.warn({ delayMs, output: output.split("\n").slice(-10) }, `${this.opts.name} ${reason}; restarting`);
    this.timer = setTimeout(() => {
      if (!this.wanted) return;
      this.launch().then(
        () => this.opts.log.info({ pid: this.pid }, `${this.opts.name} restarted`),
        (err: Error) =>
          this.wanted && this.scheduleRestart(`restart failed: ${err.message.split("\n")[0]}`, err.message),
      );
    }, delayMs);
  }
}
