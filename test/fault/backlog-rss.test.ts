/**
 * RSS: PostgreSQL stopped, a large backlog pushed into JetStream through a separate ingest process,
 * the writer process running against the stopped database. Its memory must be bounded by
 * TELEMETRY_WRITER_MAX_PENDING (what it holds unacked), not grow with the backlog. Then PostgreSQL
 * comes back and the backlog drains: exactly once.
 */
import { afterAll, expect, test } from "bun:test";
import { check, startNats, startPostgres } from "../helpers/services.ts";
import {
  consumerPending,
  Db,
  faultRecord,
  KEY,
  loadClients,
  logTail,
  now,
  report,
  rssMiB,
  seconds,
  spawnServer,
  stopAll,
  type ServerProcess,
} from "./harness.ts";

const READINGS = 1_000_000;
/** 25 consecutive readings per device: a 250-record request is 10 broker messages of 25 readings. */
const RUN = 25;
const DEVICES = 10_000;
const CLIENTS = 6;
const BATCH = 250;
const MAX_PENDING = 2_000;
/** RSS at the 200k backlog vs the rest of the backlog phase. */
const EARLY_BACKLOG = 200_000;
const MAX_GROWTH_MIB = 50;
/**
 * Absolute bound over the idle writer's own RSS: it holds at most MAX_PENDING messages of RUN
 * readings (50,000 readings, ~2.6 KB of JSON per message, ~5 MB raw; a few times that once decoded
 * into objects, plus the client's pull buffer), so 150 MiB above idle is generous yet far below
 * what a 1M-reading backlog in memory would cost (the raw JSON alone is ~100 MB).
 */
const MAX_ABOVE_IDLE_MIB = 150;

interface Sample {
  at: number;
  rss: number;
  accepted: number;
}

const cleanup: AsyncDisposable[] = [];
afterAll(async () => {
  await stopAll();
  for (const c of cleanup.reverse()) await c[Symbol.asyncDispose]();
}, 60_000);

test("writer RSS is bounded by max pending while a 1M backlog waits in JetStream; then it drains exactly once", async () => {
  const started = now();
  const nats = await startNats();
  cleanup.push(nats);
  const pg = await startPostgres();
  cleanup.push(pg);
  const env = {
    NATS_URL: nats.url,
    DATABASE_URL: pg.url,
    TELEMETRY_WRITER_MAX_PENDING: String(MAX_PENDING),
    TELEMETRY_ACK_WAIT: "10s",
  };
  const writer = await spawnServer(env, "writer", { name: "writer" });
  const ingest = await spawnServer(env, "ingest", { name: "ingest" });
  const servers: ServerProcess[] = [writer, ingest];
  const db = new Db(pg.url);
  cleanup.push(db);

  const samples: Sample[] = [];
  let accepted = 0;
  const sampler = setInterval(() => {
    const rss = rssMiB(writer.pid);
    if (rss !== undefined) samples.push({ at: now(), rss, accepted });
  }, 1_000);
  try {
    const idle = rssMiB(writer.pid)!;
    await pg.stop();
    const loadStarted = now();
    const load = loadClients({
      url: ingest.url,
      key: KEY,
      records: READINGS,
      clients: CLIENTS,
      batch: BATCH,
      record: (i) => faultRecord(i, DEVICES, RUN),
    });
    const progress = setInterval(() => (accepted = load.acceptedRecords), 100);
    const summary = await load.done.finally(() => clearInterval(progress));
    accepted = READINGS;
    const ingestSeconds = seconds(loadStarted);
    await Bun.sleep(3_000); // a few more samples with the whole backlog waiting
    const backlog = await consumerPending(nats.url);
    const backlogSamples = samples.slice();

    const drainStarted = now();
    await pg.start();
    const final = await check(
      async () => {
        const s = await db.stats();
        return s.rows >= READINGS && s;
      },
      { timeoutMs: 300_000, intervalMs: 500, what: `${READINGS} rows` },
    );
    const drainSeconds = seconds(drainStarted);
    clearInterval(sampler);

    const early = backlogSamples.filter((s) => s.accepted <= EARLY_BACKLOG);
    const atEarly = Math.max(...early.map((s) => s.rss));
    const maxBacklog = Math.max(...backlogSamples.map((s) => s.rss));
    const maxDrain = Math.max(...samples.slice(backlogSamples.length).map((s) => s.rss), 0);
    const mib = (n: number) => n.toFixed(1);
    report("RSS", {
      readings: READINGS,
      ingest_s: ingestSeconds,
      idle_mib: mib(idle),
      rss_at_200k_mib: mib(atEarly),
      rss_at_1m_mib: mib(backlogSamples.at(-1)!.rss),
      max_rss_backlog_mib: mib(maxBacklog),
      growth_mib: mib(maxBacklog - atEarly),
      max_rss_drain_mib: mib(maxDrain),
      ack_pending: backlog.ackPending,
      pending_msgs: backlog.pending,
      drain_s: drainSeconds,
      rows: final.rows,
      duplicates: final.rows - final.distinct,
      statuses: JSON.stringify(summary.statuses),
      dead_lettered: summary.deadLettered,
      seconds: seconds(started),
    });
    expect(early.length).toBeGreaterThan(0);
    expect(backlog.ackPending).toBeLessThanOrEqual(MAX_PENDING);
    expect(backlog.pending + backlog.ackPending).toBeGreaterThan(0);
    expect(maxBacklog - atEarly).toBeLessThan(MAX_GROWTH_MIB);
    expect(maxBacklog - idle).toBeLessThan(MAX_ABOVE_IDLE_MIB);
    expect(final).toEqual({ rows: READINGS, distinct: READINGS });
  } catch (err) {
    console.log(logTail(servers));
    throw err;
  } finally {
    clearInterval(sampler);
  }
}, 600_000);
