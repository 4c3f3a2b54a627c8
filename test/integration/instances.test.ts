/**
 * Several instances on one machine: the supervised nats-server and PostgreSQL are ours or nothing.
 * A NATS port already in use is an error at start naming the port, its holder and the fix (never a
 * connection to someone else's broker), `--nats-port 0` picks a free port, and a PostgreSQL data dir
 * or TCP port held by a server we did not start is refused, not taken over.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createServer, type Server } from "node:net";
import { createSql } from "../../src/db/client.ts";
import { connectBroker } from "../../src/nats/connection.ts";
import { startLocalPostgres } from "../../src/embedded/postgres.ts";
import { findPostgresBinDir } from "../../src/embedded/postgres.ts";
import { freePort, pidAlive, terminatePid } from "../../src/embedded/process.ts";
import { validRecords } from "../helpers/data.ts";
import { check, freshDatabase, startNats, startPostgres } from "../helpers/services.ts";
import { post, startTestServer, TEST_KEY, type TestServer } from "../helpers/server.ts";

const root = join(import.meta.dir, "../..");

async function readingCount(url: string, device: string): Promise<number> {
  const sql = createSql(url, { max: 1, name: "test" });
  try {
    const [table] = await sql`select to_regclass('readings') is not null as present`;
    if (!table?.present) return 0;
    return Number((await sql`select count(*)::int as n from readings where device_id like ${`${device}%`}`)[0]!.n);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** 20 readings of devices `<prefix>-0..4`, all accepted. */
async function post20(server: TestServer, prefix: string): Promise<void> {
  const records = validRecords(20, 5).map((r) => ({ ...r, device_id: r.device_id.replace("dev", prefix) }));
  const res = await post(server, records, { key: TEST_KEY });
  expect(res.status).toBe(202);
  expect(res.body.accepted).toBe(20);
}

function natsPortOf(server: TestServer): number {
  return Number(new URL(server.natsUrl).port);
}

describe("a second instance on the same NATS port", () => {
  test("the CLI exits non-zero at once naming the port, instance A's nats-server and the fix; no reading goes astray", async () => {
    const dbA = await freshDatabase("inst_a");
    const dbB = await freshDatabase("inst_b");
    const port = await freePort();
    await using a = await startTestServer({ TELEMETRY_NATS_PORT: String(port), DATABASE_URL: dbA });
    const dataDir = mkdtempSync(join(tmpdir(), "telemetry-inst-b-"));
    const started = Date.now();
    const proc = Bun.spawn({
      cmd: [process.execPath, "src/cli/main.ts", "serve"],
      cwd: root,
      env: {
        PATH: process.env.PATH!,
        PORT: "0",
        HOST: "127.0.0.1",
        TELEMETRY_DATA_DIR: dataDir,
        TELEMETRY_NATS_PORT: String(port),
        DATABASE_URL: dbB,
        TELEMETRY_API_KEYS: `acme:${TEST_KEY}`,
        LOG_LEVEL: "warn",
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const exited = await Promise.race([proc.exited, Bun.sleep(20_000).then(() => "still running")]);
      if (proc.exitCode === null) proc.kill("SIGKILL");
      const stderr = await new Response(proc.stderr).text();
      expect(exited).not.toBe("still running");
      expect(proc.exitCode).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(20_000);
      // The holder named: instance A's nats-server, running A's config file.
      expect(stderr).toMatch(
        new RegExp(
          `port ${port} on 127\\.0\\.0\\.1 is already in use by pid \\d+ \\(\\S*nats-server -c \\S+/nats/nats-server\\.conf\\)`,
        ),
      );
      expect(stderr).toContain("--nats-port");
      expect(stderr).toContain("TELEMETRY_NATS_PORT");
    } finally {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
    await post20(a, "a");
    await check(async () => (await readingCount(dbA, "a-")) === 20, {
      what: "instance A's 20 readings",
      timeoutMs: 20_000,
    });
    expect(await readingCount(dbB, "a-")).toBe(0);
  }, 90_000);

  test("a bare nats-server on the port is never used: start fails and no stream is created on it", async () => {
    await using bare = await startNats();
    const promise = startTestServer({
      TELEMETRY_NATS_PORT: String(bare.port),
      DATABASE_URL: await freshDatabase("inst_bare"),
    });
    await expect(promise).rejects.toThrow(
      new RegExp(`port ${bare.port} on 127\\.0\\.0\\.1 is already in use by pid ${bare.pid} .*--nats-port`),
    );
    const nc = await connect({ servers: bare.url });
    try {
      const streams = await (await jetstreamManager(nc)).streams.names().next();
      expect(streams).toEqual([]);
    } finally {
      await nc.close();
    }
  }, 60_000);
});

test("--nats-port 0: two instances side by side each store only their own readings", async () => {
  const dbA = await freshDatabase("side_a");
  const dbB = await freshDatabase("side_b");
  await using a = await startTestServer({ TELEMETRY_NATS_PORT: "0", DATABASE_URL: dbA });
  await using b = await startTestServer({ TELEMETRY_NATS_PORT: "0", DATABASE_URL: dbB });
  expect(natsPortOf(a)).not.toBe(natsPortOf(b));
  await post20(a, "a");
  await post20(b, "b");
  await check(async () => (await readingCount(dbA, "a-")) === 20 && (await readingCount(dbB, "b-")) === 20, {
    what: "20 readings in each database",
    timeoutMs: 20_000,
  });
  expect(await readingCount(dbA, "b-")).toBe(0);
  expect(await readingCount(dbB, "a-")).toBe(0);
}, 90_000);

test("after our nats-server dies, the broker connection never settles on another server that takes its port", async () => {
  await using ours = await startNats();
  const broker = await connectBroker(ours.url, { name: "test", serverId: () => ours.serverId });
  let foreign: Bun.Subprocess | undefined;
  try {
    expect(broker.connected).toBe(true);
    await ours.kill(); // and not restarted: the port is free for someone else
    await check(() => !broker.connected, { what: "the disconnect" });
    const monitor = await freePort();
    foreign = Bun.spawn({
      cmd: ["nats-server", "-a", "127.0.0.1", "-p", String(ours.port), "-m", String(monitor)],
      stdout: "ignore",
      stderr: "ignore",
    });
    const varz = async () =>
      (await (await fetch(`http://127.0.0.1:${monitor}/varz`)).json()) as { total_connections: number };
    // Connected, found foreign, left, and came back: at least two connections seen by the foreign server.
    await check(async () => (await varz()).total_connections >= 2, {
      what: "the client to reach the foreign server and leave it",
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    expect(broker.connected).toBe(false);
    foreign.kill("SIGKILL");
    await foreign.exited;
    await ours.start();
    await check(() => broker.connected, { what: "the reconnect to our restarted nats-server", timeoutMs: 20_000 });
  } finally {
    foreign?.kill("SIGKILL");
    await broker.close();
  }
}, 60_000);

/** As root, PostgreSQL must run as the postgres OS user (as the supervisor runs it). */
const asPostgres = () =>
  process.getuid?.() === 0 ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] : [];

describe("supervised PostgreSQL", () => {
  test("a data dir held by a postmaster we did not start is refused and that server left running", async () => {
    await using ours = await startPostgres();
    const dataDir = ours.dataDir;
    await ours.stop();
    // A PostgreSQL someone started by hand on the same data dir (own socket dir, no TCP).
    const socketDir = mkdtempSync(join(tmpdir(), "telemetry-foreign-pg-"));
    if (asPostgres().length) Bun.spawnSync({ cmd: ["chown", "postgres:postgres", socketDir] });
    const foreign = Bun.spawn({
      cmd: [
        ...asPostgres(),
        join(findPostgresBinDir(), "postgres"),
        "-D",
        dataDir,
        "-k",
        socketDir,
        "-c",
        "listen_addresses=",
      ],
      cwd: "/",
      stdout: "ignore",
      stderr: "ignore",
    });
    try {
      await check(() => Bun.file(join(dataDir, "postmaster.pid")).exists(), {
        what: "the foreign postmaster",
        timeoutMs: 30_000,
      });
      await expect(startLocalPostgres({ dataDir })).rejects.toThrow(
        `data dir ${dataDir} is in use by another PostgreSQL server, pid ${foreign.pid}`,
      );
      expect(pidAlive(foreign.pid)).toBe(true);
    } finally {
      await terminatePid(foreign.pid, "SIGINT", 20_000);
      rmSync(socketDir, { recursive: true, force: true });
    }
  }, 90_000);

  test("a PostgreSQL of another data dir on our socket is never used", async () => {
    await using ours = await startPostgres();
    await using other = await startPostgres();
    const socketDir = new URL(ours.url).searchParams.get("host")!;
    await ours.stop();
    await other.stop();
    // Someone else's server (another data dir) listening on our socket directory.
    const foreign = Bun.spawn({
      cmd: [
        ...asPostgres(),
        join(findPostgresBinDir(), "postgres"),
        "-D",
        other.dataDir,
        "-k",
        socketDir,
        "-c",
        "listen_addresses=",
      ],
      cwd: "/",
      stdout: "ignore",
      stderr: "ignore",
    });
    try {
      await check(
        () => existsSync(join(other.dataDir, "postmaster.pid")) && existsSync(join(socketDir, ".s.PGSQL.5432")),
        { what: "the foreign server's socket", timeoutMs: 30_000 },
      );
      await expect(startLocalPostgres({ dataDir: ours.dataDir, database: "never_here" })).rejects.toThrow(
        /exited during startup[\s\S]*lock file/,
      );
      expect(pidAlive(foreign.pid)).toBe(true);
      const sql = createSql(`postgres://postgres@localhost:5432/postgres?host=${encodeURIComponent(socketDir)}`, {
        max: 1,
        name: "test",
      });
      try {
        expect(await sql`select datname from pg_database where datname = 'never_here'`).toHaveLength(0);
      } finally {
        await sql.end({ timeout: 1 });
      }
    } finally {
      await terminatePid(foreign.pid, "SIGINT", 20_000);
    }
  }, 90_000);

  test("a TCP port in use is an error at start naming the port", async () => {
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", resolve));
    try {
      await expect(startPostgres({ port })).rejects.toThrow(
        `the supervised PostgreSQL cannot start: port ${port} on 127.0.0.1 is already in use by pid ${process.pid}`,
      );
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  }, 60_000);
});
