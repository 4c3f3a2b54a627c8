/**
 * T3: under load, the writer's PostgreSQL backends are terminated mid-batch a few times, then
 * PostgreSQL is stopped for 20 s and started again, then more backends are terminated while the
 * backlog drains, and finally PostgreSQL is SIGKILLed mid-batch (crash recovery on restart).
 * Every reading ends up in the database exactly once and the consumer drains.
 */
import { afterAll, expect, test } from "bun:test";
import { check, startNats, startPostgres } from "../helpers/services.ts";
import {
  settled,
  Db,
  faultRecord,
  KEY,
  loadClients,
  logTail,
  now,
  report,
  seconds,
  spawnServer,
  stopAll,
} from "./harness.ts";

const DEVICES = 1_000;
const READINGS = 100_000;
const CLIENTS = 4;
const BATCH = 250;
/** Backend terminations before the outage and after it (while the backlog drains). */
const TERMINATIONS_BEFORE = 3;
const TERMINATIONS_AFTER = 3;
const OUTAGE_MS = 20_000;
/** After the terminations: PostgreSQL SIGKILLed while a batch is in flight, down this long. */
const CRASH_DOWN_MS = 3_000;
/** The outage starts once this share of the readings has been accepted. */
const OUTAGE_AT = 0.3;

const cleanup: AsyncDisposable[] = [];
afterAll(async () => {
  await stopAll();
  for (const c of cleanup.reverse()) await c[Symbol.asyncDispose]();
}, 60_000);

test("database stopped for 20 s, writer backends terminated mid-batch, database crashed: exactly once, consumer drained", async () => {
  const started = now();
  const nats = await startNats();
  cleanup.push(nats);
  const pg = await startPostgres();
  cleanup.push(pg);
  const env = {
    NATS_URL: nats.url,
    DATABASE_URL: pg.url,
    TELEMETRY_BATCH_SIZE: "250",
    TELEMETRY_FLUSH_INTERVAL: "50ms",
    TELEMETRY_ACK_WAIT: "5s",
  };
  const server = await spawnServer(env, "ingest,writer");
  const db = new Db(pg.url);
  cleanup.push(db);

  const load = loadClients({
    url: server.url,
    key: KEY,
    records: READINGS,
    clients: CLIENTS,
    batch: BATCH,
    record: (i) => faultRecord(i, DEVICES),
  });
  try {
    const before = await load.guard(terminateMidBatch(db, TERMINATIONS_BEFORE));
    await load.guard(
      check(() => load.acceptedRecords >= READINGS * OUTAGE_AT, {
        timeoutMs: 120_000,
        intervalMs: 10,
        what: "load progress before the outage",
      }),
    );
    await pg.stop();
    const acceptedAtStop = load.acceptedRecords;
    await Bun.sleep(OUTAGE_MS); // holding the outage
    const acceptedDuringOutage = load.acceptedRecords - acceptedAtStop;
    await pg.start();
    const restartedAt = now();
    const rowsAtRestart = await db.rows();
    await check(
      async () => {
        const rows = await db.rows();
        return rows > rowsAtRestart || rows >= READINGS;
      },
      { timeoutMs: 60_000, intervalMs: 20, what: "the first commit after the outage" },
    );
    const recoveryMs = Math.round(now() - restartedAt);
    const after = await terminateMidBatch(db, TERMINATIONS_AFTER);
    const rowsAtCrash = await crashMidBatch(db, pg);
    const summary = await load.done;

    const { final, pending } = await settled(db, nats.url, READINGS);
    const retries = server.lines.filter((l) => l.includes("batch write failed")).length;

    report("T3", {
      readings: READINGS,
      outage_s: OUTAGE_MS / 1000,
      accepted_during_outage: acceptedDuringOutage,
      first_commit_after_outage_ms: recoveryMs,
      terminated: `${before + after}/${TERMINATIONS_BEFORE + TERMINATIONS_AFTER}`,
      crashed_at_rows: rowsAtCrash ?? "drained-before-crash",
      write_retries_logged: retries,
      rows: final.rows,
      duplicates: final.rows - final.distinct,
      pending: pending.pending + pending.ackPending,
      statuses: JSON.stringify(summary.statuses),
      dead_lettered: summary.deadLettered,
      server_alive: server.child.alive,
      seconds: seconds(started),
    });
    expect(server.child.alive).toBe(true);
    expect(acceptedDuringOutage).toBeGreaterThan(0); // ingest never waits on the database
    expect(before + after).toBe(TERMINATIONS_BEFORE + TERMINATIONS_AFTER);
    expect(final).toEqual({ rows: READINGS, distinct: READINGS });
    expect(pending).toEqual({ pending: 0, ackPending: 0 });
  } catch (err) {
    load.stop();
    console.log(logTail([server]));
    throw err;
  }
}, 420_000);

/**
 * `times` times: waits until a writer backend is running a statement or holds a transaction open
 * (a batch in flight), terminates it, then waits for the next commit so each kill hits a new batch.
 */
async function terminateMidBatch(db: Db, times: number): Promise<number> {
  let terminated = 0;
  for (let k = 0; k < times; k++) {
    const pids = await check(
      async () => {
        const busy = await db.busyWriterBackends();
        return busy.length > 0 && busy;
      },
      { timeoutMs: 60_000, intervalMs: 2, what: "a writer backend in the middle of a batch" },
    );
    if ((await db.terminate(pids)) > 0) terminated++;
    const rows = await db.rows();
    await check(async () => (await db.rows()) > rows, {
      timeoutMs: 60_000,
      intervalMs: 50,
      what: "the writer committing again after a termination",
    });
  }
  return terminated;
}

/** SIGKILLs PostgreSQL while a writer batch is in flight (if the backlog is not drained yet), then starts it. */
async function crashMidBatch(
  db: Db,
  pg: { kill(): Promise<void>; start(): Promise<void> },
): Promise<number | undefined> {
  await check(async () => (await db.rows()) >= READINGS || (await db.busyWriterBackends()).length > 0, {
    timeoutMs: 60_000,
    intervalMs: 2,
    what: "a writer batch in flight (or everything written)",
  });
  const rows = await db.rows();
  if (rows >= READINGS) return undefined;
  await pg.kill();
  await Bun.sleep(CRASH_DOWN_MS); // holding the outage
  await pg.start();
  return rows;
}
