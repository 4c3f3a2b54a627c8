/**
 * T4: ingest and writer in separate processes; the writer process is SIGKILLed five times while a
 * batch is in flight (its transaction open in PostgreSQL) and restarted each time. Unacked
 * messages are redelivered (short ack wait) and the event-id key makes that harmless: exactly once.
 */
import { afterAll, expect, test } from "bun:test";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import {
  settled,
  Db,
  faultRecord,
  kill9,
  KEY,
  loadClients,
  logTail,
  now,
  report,
  seconds,
  spawnServer,
  stopAll,
  type ServerProcess,
} from "./harness.ts";

const DEVICES = 2_000;
const READINGS = 150_000;
const CLIENTS = 2;
const BATCH = 250;
const KILLS = 5;
/** Small batches and a short flush interval keep a transaction open most of the time. */
const WRITER_ENV = { TELEMETRY_BATCH_SIZE: "200", TELEMETRY_FLUSH_INTERVAL: "20ms", TELEMETRY_ACK_WAIT: "2s" };

const cleanup: AsyncDisposable[] = [];
afterAll(async () => {
  await stopAll();
  for (const c of cleanup.reverse()) await c[Symbol.asyncDispose]();
}, 60_000);

test("writer process SIGKILLed mid-batch five times: exactly once", async () => {
  const started = now();
  const nats = await startNats();
  cleanup.push(nats);
  const dbUrl = await freshDatabase("fault_t4");
  const env = { NATS_URL: nats.url, DATABASE_URL: dbUrl, ...WRITER_ENV };
  const ingest = await spawnServer(env, "ingest", { name: "ingest" });
  let writer = await spawnServer(env, "writer", { name: "writer#1" });
  const writers: ServerProcess[] = [writer];
  const db = new Db(dbUrl);
  cleanup.push(db);

  const load = loadClients({
    url: ingest.url,
    key: KEY,
    records: READINGS,
    clients: CLIENTS,
    batch: BATCH,
    record: (i) => faultRecord(i, DEVICES),
  });
  try {
    const kills = await load.guard(
      killWriters(
        db,
        () => load.acceptedRecords,
        async (k) => {
          await kill9(writer);
          writer = await spawnServer(env, "writer", { name: `writer#${k + 2}` });
          writers.push(writer);
        },
      ),
    );
    const summary = await load.done;
    const { final, pending } = await settled(db, nats.url, READINGS);

    report("T4", {
      readings: READINGS,
      kills: kills.length,
      kill_at_rows: kills.map((k) => k.rows).join(","),
      load_pct_at_kill: kills.map((k) => k.loadPct).join(","),
      busy_backends_at_kill: kills.map((k) => k.busy).join(","),
      rows: final.rows,
      duplicates: final.rows - final.distinct,
      pending: pending.pending + pending.ackPending,
      statuses: JSON.stringify(summary.statuses),
      dead_lettered: summary.deadLettered,
      seconds: seconds(started),
    });
    expect(kills).toHaveLength(KILLS);
    expect(final).toEqual({ rows: READINGS, distinct: READINGS });
  } catch (err) {
    load.stop();
    console.log(logTail([ingest, ...writers]));
    throw err;
  }
}, 420_000);

interface Kill {
  rows: number;
  busy: number;
  loadPct: number;
}

/**
 * KILLS times, spread over the load (kill k once k/(KILLS+1) of the readings are accepted): waits
 * until the writer has a transaction open or a statement running, then `restart(k)` kills it.
 */
async function killWriters(db: Db, accepted: () => number, restart: (k: number) => Promise<void>): Promise<Kill[]> {
  const kills: Kill[] = [];
  let rowsAtStart = await db.rows();
  for (let k = 0; k < KILLS; k++) {
    const threshold = Math.floor(((k + 1) * READINGS) / (KILLS + 1));
    await check(() => accepted() >= threshold, {
      timeoutMs: 120_000,
      intervalMs: 10,
      what: `${threshold} readings accepted before kill ${k + 1}`,
    });
    // This writer has committed at least once (so a busy backend is its own, not a dead one's)...
    await check(async () => (await db.rows()) > rowsAtStart, {
      timeoutMs: 60_000,
      intervalMs: 10,
      what: `writer #${k + 1} committing`,
    });
    // ...and is now in the middle of a batch.
    const busy = await check(
      async () => {
        const pids = await db.busyWriterBackends();
        return pids.length > 0 && pids;
      },
      { timeoutMs: 60_000, intervalMs: 1, what: "the writer in the middle of a batch" },
    );
    const loadPct = Math.round((100 * accepted()) / READINGS);
    const rows = await db.rows();
    await restart(k);
    rowsAtStart = await db.rows();
    kills.push({ rows, busy: busy.length, loadPct });
  }
  return kills;
}
