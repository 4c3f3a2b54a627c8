/**
 * T1: nats-server SIGKILLed three times under load (down 5–15 s each, then restarted on the same
 * port and store). Every reading posted by the retrying clients must end up in PostgreSQL exactly
 * once, and no request sent while the broker was down may be answered 2xx before it came back.
 */
import { afterAll, expect, test } from "bun:test";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
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
  type Sent,
} from "./harness.ts";

const DEVICES = 2_000;
const READINGS = DEVICES * 100;
const CLIENTS = 6;
const BATCH = 250;
/** How long each outage lasts; one kill per entry, spread evenly over the load. */
const DOWN_MS = [5_000, 10_000, 15_000];

interface Outage {
  /** From kill() returning (the broker is dead) until start() is called. */
  downFrom: number;
  downUntil: number;
  /** When start() resolved (JetStream answers again). */
  upAt: number;
}

const cleanup: AsyncDisposable[] = [];
afterAll(async () => {
  await stopAll();
  for (const c of cleanup.reverse()) await c[Symbol.asyncDispose]();
}, 60_000);

test("broker SIGKILLed under load: exactly once in the database, never 2xx while it is down", async () => {
  const started = now();
  const nats = await startNats();
  cleanup.push(nats);
  const dbUrl = await freshDatabase("fault_t1");
  const env = { NATS_URL: nats.url, DATABASE_URL: dbUrl, TELEMETRY_FLUSH_INTERVAL: "100ms" };
  const server = await spawnServer(env, "ingest,writer");
  const db = new Db(dbUrl);
  cleanup.push(db);

  const responses: Sent[] = [];
  const load = loadClients({
    url: server.url,
    key: KEY,
    records: READINGS,
    clients: CLIENTS,
    batch: BATCH,
    record: (i) => faultRecord(i, DEVICES),
    onResponse: (r) => responses.push(r),
  });
  try {
    const outages = await load.guard(injectOutages(nats, () => load.acceptedRecords));
    const summary = await load.done;
    const { final, pending } = await settled(db, nats.url, READINGS);
    const verdict = judge(responses, outages);

    report("T1", {
      readings: READINGS,
      kills: outages.length,
      down_s: outages.map((o) => ((o.downUntil - o.downFrom) / 1000).toFixed(1)).join(","),
      restart_ms: outages.map((o) => Math.round(o.upAt - o.downUntil)).join(","),
      rows: final.rows,
      duplicates: final.rows - final.distinct,
      ok_sent_and_answered_while_down: verdict.violations.length,
      ok_answered_while_down_sent_before: verdict.lateOk,
      their_max_ms_after_kill: verdict.lateOkMaxMs,
      non2xx_while_down: verdict.refusedWhileDown,
      requests: summary.requests,
      statuses: JSON.stringify(summary.statuses),
      dead_lettered: summary.deadLettered,
      broker_duplicates: summary.duplicate,
      pending: pending.pending + pending.ackPending,
      seconds: seconds(started),
    });
    expect(outages).toHaveLength(DOWN_MS.length);
    expect(verdict.violations).toEqual([]);
    expect(verdict.refusedWhileDown).toBeGreaterThan(0); // the clients really were hitting the outage
    expect(final).toEqual({ rows: READINGS, distinct: READINGS });
  } catch (err) {
    load.stop();
    console.log(logTail([server]));
    throw err;
  }
}, 420_000);

/** Kills the broker when the load passes 1/(n+1), 2/(n+1), ... of the readings; holds it down; restarts it. */
async function injectOutages(
  nats: { kill(): Promise<void>; start(): Promise<void> },
  accepted: () => number,
): Promise<Outage[]> {
  const outages: Outage[] = [];
  for (const [k, downMs] of DOWN_MS.entries()) {
    const threshold = Math.floor(((k + 1) * READINGS) / (DOWN_MS.length + 1));
    await check(() => accepted() >= threshold, {
      timeoutMs: 120_000,
      intervalMs: 10,
      what: `${threshold} readings accepted before kill ${k + 1}`,
    });
    await nats.kill();
    const downFrom = now();
    await Bun.sleep(downMs); // holding the outage, not waiting for the thing under test
    const downUntil = now();
    await nats.start();
    outages.push({ downFrom, downUntil, upAt: now() });
  }
  return outages;
}

/**
 * A 2xx for a request that was both sent and answered while the broker was dead is a lie (nothing
 * could have acknowledged it). 2xx answers that arrive inside a window for requests sent before the
 * kill are counted separately: their PubAcks may have come just before the SIGKILL.
 */
function judge(responses: Sent[], outages: Outage[]) {
  const inside = (t: number, o: Outage) => t >= o.downFrom && t <= o.downUntil;
  const violations: Sent[] = [];
  let lateOk = 0;
  let lateOkMaxMs = 0;
  let refusedWhileDown = 0;
  for (const r of responses) {
    const o = outages.find((w) => inside(r.receivedAt, w));
    if (!o) continue;
    const ok = r.status >= 200 && r.status < 300;
    if (!ok) refusedWhileDown++;
    else if (r.sentAt >= o.downFrom) violations.push(r);
    else {
      lateOk++;
      lateOkMaxMs = Math.max(lateOkMaxMs, Math.round(r.receivedAt - o.downFrom));
    }
  }
  return { violations, lateOk, lateOkMaxMs, refusedWhileDown };
}
