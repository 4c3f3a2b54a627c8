/**
 * T5: SIGTERM to an all-roles server under load. It must exit 0 within its shutdown timeout; what
 * it answered 202 must reach the database exactly once (a second server on the same port drains
 * JetStream and takes the clients' retries); and requests sent after the signal get 503 or a
 * refused connection, never a 202. T5b: the same with PostgreSQL down at the time of the signal.
 */
import { afterAll, expect, test } from "bun:test";
import { freePort, signalPid } from "../../src/embedded/process.ts";
import { check, freshDatabase, startNats, startPostgres } from "../helpers/services.ts";
import {
  consumerPending,
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
  type Sent,
  type ServerProcess,
} from "./harness.ts";

const DEVICES = 500;
const READINGS = 100_000;
const READINGS_DB_DOWN = 60_000;
const CLIENTS = 6;
const BATCH = 250;
const ROLES = "ingest,writer,evaluator,api";
const SHUTDOWN_TIMEOUT_MS = 15_000;
/** SIGTERM once this share of the readings has been accepted (T5b: the database stops at half of it). */
const SIGTERM_AT = 0.4;
/** Time for the signal to reach the event loop: requests sent later must not get 2xx. */
const SIGNAL_MARGIN_MS = 100;

const cleanup: AsyncDisposable[] = [];
afterAll(async () => {
  await stopAll();
  for (const c of cleanup.reverse()) await c[Symbol.asyncDispose]();
}, 60_000);

interface Database {
  url: string;
  stop?: () => Promise<void>;
  start?: () => Promise<void>;
}

test("SIGTERM under load: exit 0 in time, every 202 stored exactly once, no 202 after the signal", async () => {
  await sigtermUnderLoad("T5", READINGS, { url: await freshDatabase("fault_t5") });
}, 300_000);

test("SIGTERM under load with PostgreSQL down: exit 0 in time, every 202 stored exactly once", async () => {
  const pg = await startPostgres();
  cleanup.push(pg);
  await sigtermUnderLoad("T5b", READINGS_DB_DOWN, { url: pg.url, stop: () => pg.stop(), start: () => pg.start() });
}, 300_000);

async function sigtermUnderLoad(name: string, readings: number, database: Database): Promise<void> {
  const started = now();
  const nats = await startNats();
  cleanup.push(nats);
  const port = await freePort();
  const env = {
    NATS_URL: nats.url,
    DATABASE_URL: database.url,
    TELEMETRY_FLUSH_INTERVAL: "100ms",
    TELEMETRY_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms`,
  };
  const first = await spawnServer(env, ROLES, { port, name: `${name}-first` });
  const servers: ServerProcess[] = [first];
  const db = new Db(database.url);
  cleanup.push(db);

  const responses: Sent[] = [];
  const load = loadClients({
    url: first.url,
    key: KEY,
    records: readings,
    clients: CLIENTS,
    batch: BATCH,
    record: (i) => faultRecord(i, DEVICES, 5),
    wantIds: true,
    onResponse: (r) => responses.push(r),
  });
  const progress = (share: number, what: string) =>
    load.guard(check(() => load.acceptedRecords >= readings * share, { timeoutMs: 120_000, intervalMs: 5, what }));
  try {
    if (database.stop) {
      await progress(SIGTERM_AT / 2, "load progress before stopping PostgreSQL");
      await database.stop();
    }
    await progress(SIGTERM_AT, "load progress before SIGTERM");
    const sigtermAt = now();
    signalPid(first.pid, "SIGTERM");
    await first.child.exited;
    const exitedAt = now();
    const exit = first.child.exitStatus;
    const inStream = await consumerPending(nats.url);
    await database.start?.();
    const rowsAtExit = await db.rows();

    // The clients keep retrying (connection refused) until a second server takes the port.
    const second = await spawnServer(env, ROLES, { port, name: `${name}-second` });
    servers.push(second);
    const summary = await load.done;
    const final = await check(
      async () => {
        const s = await db.stats();
        return s.rows >= readings && s;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `${readings} rows` },
    );

    const fromFirst = responses.filter((r) => r.receivedAt <= exitedAt);
    const okIds = fromFirst.flatMap((r) => r.eventIds ?? []);
    const okAfterSignal = fromFirst.filter((r) => r.status === 202 && r.sentAt >= sigtermAt + SIGNAL_MARGIN_MS);
    const presentOk = await db.present(okIds);

    report(name, {
      readings,
      database_down: Boolean(database.stop),
      exit: exit.replaceAll(" ", "_"),
      exit_ms: Math.round(exitedAt - sigtermAt),
      shutdown_timeout_ms: SHUTDOWN_TIMEOUT_MS,
      ok_by_first: okIds.length,
      ok_by_first_in_db: presentOk,
      rows_at_exit: rowsAtExit,
      left_in_stream_msgs: inStream.pending + inStream.ackPending,
      after_signal: JSON.stringify(countStatuses(fromFirst.filter((r) => r.sentAt >= sigtermAt))),
      ok_sent_after_signal: okAfterSignal.length,
      rows: final.rows,
      duplicates: final.rows - final.distinct,
      statuses: JSON.stringify(summary.statuses),
      dead_lettered: summary.deadLettered,
      seconds: seconds(started),
    });
    expect(okAfterSignal).toEqual([]);
    expect(presentOk).toBe(okIds.length);
    expect(final).toEqual({ rows: readings, distinct: readings });
    expect(exit).toBe("exit code 0");
    expect(exitedAt - sigtermAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
  } catch (err) {
    load.stop();
    console.log(logTail(servers));
    throw err;
  }
}

function countStatuses(sent: Sent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of sent) {
    const key = s.status === 0 ? "error" : String(s.status);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
