import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type postgres from "postgres";
import { createSql } from "../../src/db/client.ts";
import { freePort, pidAlive } from "../../src/embedded/process.ts";
import { check, freshDatabase, startNats, startPostgres } from "../helpers/services.ts";

function sqlFor(url: string): postgres.Sql {
  return createSql(url, { max: 2, name: "test" });
}

async function withSql<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = sqlFor(url);
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

describe("local nats-server", () => {
  test("JetStream round trip; file-stored messages survive kill() and start()", async () => {
    await using nats = await startNats();
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "EVENTS", subjects: ["events.>"], storage: StorageType.File });
    const ack = await jetstream(nc).publish("events.a", "hello");
    expect(ack).toMatchObject({ stream: "EVENTS", seq: 1 });
    await nc.close();

    await nats.kill();
    expect(nats.running).toBe(false);
    expect(nats.pid).toBeUndefined();
    await nats.start();

    const nc2 = await connect({ servers: nats.url });
    try {
      const jsm2 = await jetstreamManager(nc2);
      expect((await jsm2.streams.info("EVENTS")).state.messages).toBe(1);
      expect((await jsm2.streams.getMessage("EVENTS", { seq: 1 }))?.string()).toBe("hello");
    } finally {
      await nc2.close();
    }
  });

  test("stop() frees the port", async () => {
    await using nats = await startNats();
    expect(await portIsFree(nats.port)).toBe(false);
    await nats.stop();
    expect(nats.running).toBe(false);
    expect(await portIsFree(nats.port)).toBe(true);
  });

  test("an unexpected exit is restarted by the supervisor", async () => {
    await using nats = await startNats();
    const crashed = nats.pid!;
    process.kill(crashed, "SIGKILL");
    const restarted = await check(() => nats.running && nats.pid !== crashed && nats.pid, {
      what: "a new nats-server pid",
    });
    expect(restarted).not.toBe(crashed);
    const nc = await check(() => connect({ servers: nats.url, reconnect: false }), { what: "a connection" });
    await nc.close();
  });

  test("start() stops a nats-server orphaned by a crashed parent", async () => {
    await using nats = await startNats();
    await nats.kill();
    const orphan = Bun.spawn({
      cmd: ["nats-server", "-c", join(nats.storeDir, "nats-server.conf")],
      stdout: "ignore",
      stderr: "ignore",
    });
    try {
      const pidFile = join(nats.storeDir, "nats-server.pid");
      await check(() => readFileSync(pidFile, "utf8").trim() === String(orphan.pid), { what: "the orphan's pid file" });
      await nats.start();
      expect(pidAlive(orphan.pid)).toBe(false);
      expect(nats.pid).not.toBe(orphan.pid);
    } finally {
      orphan.kill("SIGKILL");
    }
  });
});

describe("local PostgreSQL", () => {
  test("committed rows survive SIGKILL; start() recovers on the same socket", async () => {
    await using pg = await startPostgres();
    expect(pg.url).toContain("?host=");
    await withSql(pg.url, async (sql) => {
      await sql`create table readings (id int primary key, v text)`;
      await sql`insert into readings values (1, 'kept')`;
    });

    await pg.kill();
    expect(pg.running).toBe(false);
    await pg.start();

    const rows = await withSql(pg.url, (sql) => sql`select v from readings where id = 1`);
    expect(rows[0]?.v).toBe("kept");
    await pg.stop();
    expect(pg.running).toBe(false);
  });

  test("listens on 127.0.0.1 as well when given a port", async () => {
    const port = await freePort();
    await using pg = await startPostgres({ port });
    expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${port}/telemetry`);
    const [row] = await withSql(pg.url, (sql) => sql`select current_database() as db`);
    expect(row?.db).toBe("telemetry");
    await pg.stop();
    expect(await portIsFree(port)).toBe(true);
  });

  test("an unexpected postmaster crash is restarted by the supervisor", async () => {
    await using pg = await startPostgres();
    const sql = sqlFor(pg.url);
    try {
      await sql`select 1`;
      const crashed = pg.pid!;
      process.kill(crashed, "SIGKILL");
      await check(() => pg.pid !== crashed, { what: "the supervisor to notice the crash" });
      const [row] = await check(async () => await sql<{ answer: number }[]>`select 42 as answer`, {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: "a working query",
      });
      expect(row?.answer).toBe(42);
      expect(pg.pid).not.toBe(crashed);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  test("freshDatabase gives isolated databases on the shared server", async () => {
    const [a, b] = await Promise.all([freshDatabase("iso"), freshDatabase("iso")]);
    expect(a).not.toBe(b);
    await withSql(a, (sql) => sql`create table only_in_a (x int)`);
    const [found] = await withSql(b, (sql) => sql`select to_regclass('only_in_a') is not null as present`);
    expect(found?.present).toBe(false);
  });
});
