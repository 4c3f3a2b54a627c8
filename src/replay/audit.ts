/**
 * Failover audit (writer role, replicated streams only). nats-server 2.9 can move a durable
 * consumer past a message it never delivered when the stream's or the consumer's leader changes
 * (README "Failover, tested": the cluster test found readings in the stream, acknowledged to the
 * client, that no writer ever received, while the consumer reported nothing pending). After each
 * leader election of the telemetry stream or the writer's consumer, once elections have been quiet
 * for `settleMs` and the consumer's ack floor has reached the stream's end as of then, the stream's
 * messages from `beforeMs` before the first election to that end are re-applied through the
 * writer's idempotent sink (the replay path, upsert): a skipped reading is written, every other one
 * is a no-op. Elections are seen from JetStream's advisories and, in case
 * an advisory was missed while this process was reconnecting, by polling the leaders.
 *
 * Readings restored here are counted (`telemetry_writer_audit_restored_total`) and logged: each one
 * is a message the broker skipped. They are not announced to the evaluator (rules do not see them).
 */
import type { Subscription } from "@nats-io/transport-node";
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import { sleep } from "../lib/backoff.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import type { Broker } from "../nats/connection.ts";
import { runReplay } from "./replay.ts";

const log = logger("audit");
const POLL_MS = 5_000;
const RETRY_MS = 30_000;
const WAIT_MS = 2_000;

export interface AuditOptions {
  stream: string;
  durable: string;
  /** How far before an election the audit starts reading. */
  beforeMs: number;
  /** Quiet time after the last election before the audit runs. */
  settleMs: number;
  batchSize: number;
}

export interface FailoverAudit {
  stop(): Promise<void>;
}

/** Where the audit starts reading after elections seen at `electionTimes`, null with none (pure); it ends at the stream's end. */
export function auditStart(electionTimes: readonly number[], beforeMs: number): number | null {
  return electionTimes.length === 0 ? null : Math.min(...electionTimes) - beforeMs;
}

/** Starts the audit when the telemetry stream is replicated; null otherwise (a single server has no leader changes to fear). */
export async function startFailoverAudit(
  deps: { broker: Broker; sql: Sql },
  o: AuditOptions,
): Promise<FailoverAudit | null> {
  const { broker } = deps;
  const info = await broker.jsm.streams.info(o.stream);
  if (info.config.num_replicas <= 1) return null;

  let elections: number[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running: Promise<void> | null = null;
  let stopped = false;

  const elected = (what: string) => {
    if (stopped) return;
    elections.push(Date.now());
    log.info({ what }, "leader elected; auditing the stream around it once elections settle");
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void audit(), o.settleMs);
  };

  const audit = async (): Promise<void> => {
    timer = null;
    if (running || stopped) {
      if (!stopped) timer = setTimeout(() => void audit(), o.settleMs);
      return;
    }
    const from = auditStart(elections, o.beforeMs);
    if (from === null) return;
    const seen = elections;
    elections = [];
    running = (async () => {
      try {
        const stream = (await broker.jsm.streams.info(o.stream)).state;
        // Only what the consumer has passed can have been skipped: wait until its ack floor reaches
        // the stream's end as of now (the writer may still be working through a backlog), so every
        // reading written below is one the consumer moved past without a write.
        const endSeq = stream.last_seq;
        while (!stopped && (await broker.jsm.consumers.info(o.stream, o.durable)).ack_floor.stream_seq < endSeq)
          await sleep(WAIT_MS);
        if (stopped) return;
        const summary = await runReplay(deps, {
          stream: o.stream,
          from: { time: Math.max(from, Date.parse(stream.first_ts)) },
          to: { seq: endSeq },
          targets: new Set(["writer"]),
          dryRun: false,
          batchSize: o.batchSize,
          prefer: "upsert",
        });
        if (summary.errors > 0) throw new Error(`${summary.errors} batch(es) failed`);
        metrics.auditRestored.inc(summary.inserted);
        const fields = {
          messages: summary.messages,
          readings: summary.readings,
          restored: summary.inserted,
          from: new Date(from).toISOString(),
        };
        if (summary.inserted > 0) log.warn(fields, "failover audit restored readings the consumer had skipped");
        else log.info(fields, "failover audit: nothing was skipped");
      } catch (err) {
        log.warn({ err: errorText(err), retryInMs: RETRY_MS }, "failover audit failed; trying again");
        elections = [...seen, ...elections];
        if (!stopped && !timer) timer = setTimeout(() => void audit(), RETRY_MS);
      } finally {
        running = null;
      }
    })();
    await running;
  };

  const subs: Subscription[] = [
    broker.nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.${o.stream}`, { callback: () => elected("stream") }),
    broker.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.${o.stream}.${o.durable}`, {
      callback: () => elected("consumer"),
    }),
  ];
  let leaders: string | null = null;
  const poll = setInterval(() => {
    void Promise.all([broker.jsm.streams.info(o.stream), broker.jsm.consumers.info(o.stream, o.durable)])
      .then(([s, c]) => {
        const now = `${s.cluster?.leader ?? ""}/${c.cluster?.leader ?? ""}`;
        if (leaders !== null && now !== leaders) elected("leaders changed (polled)");
        leaders = now;
      })
      .catch(() => {}); // during an election: the next poll sees the outcome
  }, POLL_MS);

  return {
    async stop() {
      stopped = true;
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      for (const s of subs) s.unsubscribe();
      // An audit under way is harmless to cut short (idempotent writes); shutdown does not wait for it.
      if (running) await Promise.race([running, sleep(1_000)]);
    },
  };
}
