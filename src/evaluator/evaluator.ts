/**
 * Evaluator role: consumes committed-batch events (its own durable consumer, its own database
 * pool), evaluates the tenant's rules over them and persists alerts with their outbox rows.
 * It runs beside the writer, never in its path: when its database is unreachable or a rule
 * misbehaves it logs, counts and retries its own backlog, while ingest and the writer go on.
 * Events are handled one at a time, in stream order, so each (rule, device) sees time order.
 */
import type { JsMsg } from "@nats-io/jetstream";
import { decodeCommitted, type CommittedBatch } from "../core/committed.ts";
import type { Sql } from "../db/client.ts";
import { errorText, isConnectionError } from "../db/errors.ts";
import { logger } from "../lib/log.ts";
import type { Broker } from "../nats/connection.ts";
import { EVALUATOR_CONSUMER } from "../nats/topology.ts";
import { sweepSilence } from "./no-data.ts";
import { evaluateBatch } from "./evaluate.ts";
import { RULES_CHANGED_SUBJECT } from "../core/subject.ts";
import { RulesCache } from "./rules-cache.ts";
import { commitOutcome } from "./store.ts";
import { metrics } from "../lib/metrics.ts";
import { retryUntil } from "../pipeline/retry.ts";
import { StopBudget } from "../pipeline/stop.ts";
import { consumeDurable, quarantine } from "../pipeline/worker.ts";

const log = logger("evaluator");
/** Failures (other than connection trouble) after which an event is quarantined. */
const POISON_AFTER = 3;

export interface EvaluatorOptions {
  stream: string;
  durable: string;
  noDataIntervalMs: number;
  /** Default lateness bound for rules without their own (decision 0460); 0 = none. */
  maxLatenessMs?: number;
  /** Called after alerts were committed (the notifier delivers their outbox rows). */
  onAlerts?: () => void;
}

export interface EvaluatorStats {
  batches: number;
  units: number;
  opened: number;
  resolved: number;
  errors: number;
  lastBatchMs: number;
  healthy: boolean;
}

export interface Evaluator {
  readonly stats: EvaluatorStats;
  /** Runs the no_data sweep now (the timer does this every noDataIntervalMs). */
  sweep(now?: number): Promise<void>;
  stop(timeoutMs: number): Promise<void>;
}

export async function startEvaluator(broker: Broker, sql: Sql, opts: EvaluatorOptions): Promise<Evaluator> {
  const stats: EvaluatorStats = {
    batches: 0,
    units: 0,
    opened: 0,
    resolved: 0,
    errors: 0,
    lastBatchMs: 0,
    healthy: true,
  };
  const rules = new RulesCache(sql);
  const changes = broker.nc.subscribe(RULES_CHANGED_SUBJECT, { callback: () => rules.invalidate() });
  const budget = new StopBudget();

  const count = (opened: number, resolved: number) => {
    stats.opened += opened;
    stats.resolved += resolved;
    metrics.alerts.inc({ event: "opened" }, opened);
    metrics.alerts.inc({ event: "resolved" }, resolved);
  };

  const evaluate = async (batch: CommittedBatch) => {
    const started = performance.now();
    const tenantRules = await rules.forTenant(batch.tenant);
    if (tenantRules.length === 0) return;
    const { units, opened, resolved } = await evaluateBatch(sql, tenantRules, batch, {
      maxLatenessMs: opts.maxLatenessMs,
    });
    stats.units += units;
    count(opened, resolved);
    stats.lastBatchMs = performance.now() - started;
    if (opened || resolved) {
      log.info({ tenant: batch.tenant, opened, resolved }, "alerts changed");
      opts.onAlerts?.();
    }
  };

  /**
   * Handles one event before the next, so (rule, device) always sees time order. Database
   * trouble is retried until it passes (keeping the event alive); an event that cannot be decoded,
   * or whose evaluation keeps failing for another reason (a bug, a bad rule), is quarantined and
   * the evaluator goes on.
   */
  const handleOnce = async (msg: JsMsg, attempt: number) => {
    let batch: CommittedBatch;
    try {
      batch = decodeCommitted(msg.string());
    } catch (err) {
      return await poison(msg, `undecodable committed-batch event: ${(err as Error).message}`);
    }
    try {
      await evaluate(batch);
    } catch (err) {
      if (isConnectionError(err) || attempt < POISON_AFTER) throw err;
      return await poison(msg, `evaluation failed ${attempt + 1} times: ${errorText(err)}`);
    }
    stats.batches++;
    stats.healthy = true;
    msg.ack();
  };

  // Past the stop's deadline the event stays unacked: redelivered later.
  const handle = (msg: JsMsg) =>
    retryUntil((attempt) => handleOnce(msg, attempt), {
      baseMs: 200,
      maxMs: 10_000,
      until: () => budget.deadline,
      onError: (err, attempt, wait) => {
        stats.errors++;
        metrics.evaluatorErrors.inc();
        stats.healthy = false;
        if (wait === null) return;
        log.warn(
          { err: errorText(err), attempt: attempt + 1, retryInMs: wait },
          "evaluation failed; retrying (ingest and the writer are unaffected)",
        );
        msg.working();
      },
    });

  const poison = async (msg: JsMsg, reason: string) => {
    await quarantine(sql, "evaluator", msg, reason);
    log.error({ seq: msg.seq, reason }, "committed-batch event quarantined");
  };

  const messages = await consumeDurable(broker, log, {
    stream: opts.stream,
    durable: opts.durable,
    ackWaitMs: EVALUATOR_CONSUMER.ackWaitMs,
    maxAckPending: EVALUATOR_CONSUMER.maxAckPending,
    maxMessages: 64,
  });
  const loop = (async () => {
    for await (const msg of messages) {
      await handle(msg);
      if (budget.stopping) break;
    }
  })();

  const sweep = async (now = Date.now()) => {
    const outcomes = await sweepSilence(sql, await rules.all(), now);
    for (const [tenant, outcome] of outcomes) {
      const { opened, resolved } = await commitOutcome(sql, tenant, outcome);
      count(opened, resolved);
      if (opened || resolved) opts.onAlerts?.();
    }
  };
  let sweeping = false;
  const timer = setInterval(async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      await sweep();
    } catch (err) {
      stats.errors++;
      log.warn({ err: errorText(err) }, "no_data sweep failed; will try again");
    } finally {
      sweeping = false;
    }
  }, opts.noDataIntervalMs);

  log.info({ stream: opts.stream, durable: opts.durable }, "evaluator started");
  return {
    stats,
    sweep,
    async stop(timeoutMs: number) {
      budget.begin(timeoutMs);
      clearInterval(timer);
      changes.unsubscribe();
      await messages.close().catch(() => {});
      await budget.within(loop);
      log.info({ ...stats }, "evaluator stopped");
    },
  };
}
