/**
 * T5: SIGTERM to an all-roles server under load. It must exit 0 within its shutdown timeout; what
 * it answered 202 must reach the database exactly once (a second server on the same port drains
 * JetStream and takes the clients' retries); and requests sent after the signal get 503 or a
 * refused connection, never a 202.
 */
import { afterAll, expect, test } from "bun:test";
import { freePort, signalPid } from "../../src/embedded/process.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { consumerPending, Db, faultRecord, KEY, loadClients, logTail, now, report, seconds, spawnServer, stopAll, type Sent, type ServerProcess } from "./harness.ts";

const DEVICES = 500;
const READINGS = 100_000;
const CLIENTS = 6;
const BATCH = 250;
const ROLES = "ingest,writer,evaluator,api";
const SHUTDOWN_TIMEOUT_MS = 15_000;
/** SIGTERM once this share of the readings has been accepted. */
const SIGTERM_AT = 0.4;
/** Time for the signal to reach the event loop: requests sent later must not get 2xx. */
const SIGNAL_MARGIN_MS = 100;

const cleanup: AsyncDisposable[] = [];
afterAll(async () => {
  await stopAll();
  for (const c of cleanup.reverse()) await c[Symbol.asyncDispose]();
}, 60_000);

test("SIGTERM under load: exit 0 in time, every 202 stored exactly once, no 202 after the signal", async () => {
  const started = now();
  const nats = await startNats();
  cleanup.push(nats);
  const dbUrl = await freshDatabase("fault_t5");
  const port = await freePort();
  const env = { NATS_URL: nats.url, DATABASE_URL: dbUrl, TELEMETRY_FLUSH_INTERVAL: "100ms", TELEMETRY_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms` };
  const first = await spawnServer(env, ROLES, { port, name: "first" });
  const servers: ServerProcess[] = [first];
  const db = new Db(dbUrl);
  cleanup.push(db);

  const responses: Sent[] = [];
  const load = loadClients({ url: first.url, key: KEY, records: READINGS, clients: CLIENTS, batch: BATCH, record: (i) => faultRecord(i, DEVICES, 5), wantIds: true, onResponse: (r) => responses.push(r) });
  try {
    await check(() => load.acceptedRecords >= READINGS * SIGTERM_AT, { timeoutMs: 120_000, intervalMs: 5, what: "load progress before SIGTERM" });
    const sigtermAt = now();
    signalPid(first.pid, "SIGTERM");
    await first.child.exited;
    const exitedAt = now();
    const exit = first.child.exitStatus;
    const rowsAtExit = await db.rows();
    const inStream = await consumerPending(nats.url);

    // The clients keep retrying (connection refused) until a second server takes the port.
    const second = await spawnServer(env, ROLES, { port, name: "second" });
    servers.push(second);
    const summary = await load.done;
    const final = await check(async () => {
      const s = await db.stats();
      return s.rows >= READINGS && s;
    }, { timeoutMs: 120_000, intervalMs: 250, what: `${READINGS} rows` });

    const fromFirst = responses.filter((r) => r.receivedAt <= exitedAt);
    const okIds = fromFirst.flatMap((r) => r.eventIds ?? []);
    const okAfterSignal = fromFirst.filter((r) => r.status === 202 && r.sentAt >= sigtermAt + SIGNAL_MARGIN_MS);
    const afterSignal = fromFirst.filter((r) => r.sentAt >= sigtermAt);
    const presentOk = await db.present(okIds);

    report("T5", {
      readings: READINGS,
      exit: exit.replace(" ", "_"),
      exit_ms: Math.round(exitedAt - sigtermAt),
      ok_by_first: okIds.length,
      ok_by_first_in_db: presentOk,
      rows_at_exit: rowsAtExit,
      left_in_stream: inStream.pending + inStream.ackPending,
      after_signal: JSON.stringify(countStatuses(afterSignal)),
      ok_sent_after_signal: okAfterSignal.length,
      rows: final.rows,
      duplicates: final.rows - final.distinct,
      statuses: JSON.stringify(summary.statuses),
      seconds: seconds(started),
    });
    expect(exit).toBe("exit code 0");
    expect(exitedAt - sigtermAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(okAfterSignal).toEqual([]);
    expect(presentOk).toBe(okIds.length);
    expect(final).toEqual({ rows: READINGS, distinct: READINGS });
  } catch (err) {
    load.stop();
    console.log(logTail(servers));
    throw err;
  }
}, 300_000);

function countStatuses(sent: Sent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of sent) out[s.status === 0 ? "error" : s.status] = (out[s.status === 0 ? "error" : s.status] ?? 0) + 1;
  return out;
}
