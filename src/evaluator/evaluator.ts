/**
 * Evaluator role: consumes committed-batch events (its own database pool), evaluates the tenant's
 * rules over them and persists alerts with their outbox rows. It runs beside the writer, never in
 * its path: when its database is unreachable or a rule misbehaves it logs, counts and retries its
 * own backlog, while ingest and the writer go on.
 * The events come in partitions by device (decision 0550); this process reads the partitions whose
 * leases it holds (all of them when it runs alone), each with its own durable consumer, one event
 * at a time, so each (rule, device) sees time order. Every outcome is written under the
 * partition's PostgreSQL fence, so a handover between processes neither repeats nor loses one.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { JsMsg } from "@nats-io/jetstream";
import { decodeCommitted, type CommittedBatch } from "../core/committed.ts";
import { DEFAULT_PARTITIONS, LEGACY_PARTITION, partitionNames, partitionOf } from "../core/partition.ts";
import { RULES_CHANGED_SUBJECT } from "../core/subject.ts";
import type { Sql } from "../db/client.ts";
import { errorText, isConnectionError } from "../db/errors.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import type { Broker } from "../nats/connection.ts";
import { KvBucket } from "../nats/kv.ts";
import { retryUntil } from "../pipeline/retry.ts";
import { StopBudget } from "../pipeline/stop.ts";
import { quarantine } from "../pipeline/worker.ts";
import { evaluateBatch } from "./evaluate.ts";
import { type Fence, FencedError } from "./fence.ts";
import { Leases } from "./leases.ts";
import { sweepSilence } from "./no-data.ts";
import { runPartition, type PartitionRun } from "./partition.ts";
import type { Outcome } from "./plan.ts";
import { RulesCache } from "./rules-cache.ts";
import { commitOutcome } from "./store.ts";

const log = logger("evaluator");
/** Failures (other than connection trouble) after which an event is quarantined. */
const POISON_AFTER = 3;
export const DEFAULT_LEASE_TTL_MS = 10_000;

export interface EvaluatorOptions {
  stream: string;
  /** Name of the old-form events' consumer; partition p's is `<durable>_<p>`. */
  durable: string;
  noDataIntervalMs: number;
  /** Default lateness bound for rules without their own (decision 0460); 0 = none. */
  maxLatenessMs?: number;
  /** Evaluation partitions (TELEMETRY_EVALUATOR_PARTITIONS); the writer must use the same number. */
  partitions?: number;
  /** How long a partition lease lasts without renewal (TELEMETRY_EVALUATOR_LEASE). */
  leaseTtlMs?: number;
  /** Replicas of the lease bucket (TELEMETRY_STREAM_REPLICAS). */
  replicas?: number;
  /** This process's name in the leases (default: host, pid and a random part). */
  holder?: string;
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
  /** This process's name in the leases. */
  readonly holder: string;
  /** The partitions this process evaluates now ("legacy", "0", ...). */
  partitions(): string[];
  /** Runs the no_data sweep now, for the devices of the partitions held (the timer does this every noDataIntervalMs). */
  sweep(now?: number): Promise<void>;
  stop(timeoutMs: number): Promise<void>;
}

export const consumerName = (durable: string, partition: string) =>
  partition === LEGACY_PARTITION ? durable : `${durable}_${partition}`;

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
  const partitions = opts.partitions ?? DEFAULT_PARTITIONS;
  const holder =
    opts.holder ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const rules = new RulesCache(sql);
  const changes = broker.nc.subscribe(RULES_CHANGED_SUBJECT, { callback: () => rules.invalidate() });
  const budget = new StopBudget();

  const count = (opened: number, resolved: number) => {
    stats.opened += opened;
    stats.resolved += resolved;
    metrics.alerts.inc({ event: "opened" }, opened);
    metrics.alerts.inc({ event: "resolved" }, resolved);
  };

  const evaluate = async (batch: CommittedBatch, fence: Fence) => {
    const started = performance.now();
    const tenantRules = await rules.forTenant(batch.tenant);
    if (tenantRules.length === 0) return;
    const { units, opened, resolved } = await evaluateBatch(sql, tenantRules, batch, {
      maxLatenessMs: opts.maxLatenessMs,
      fence,
    });
    stats.units += units;
    count(opened, resolved);
    stats.lastBatchMs = performance.now() - started;
    if (opened || resolved) {
      log.info({ tenant: batch.tenant, opened, resolved }, "alerts changed");
      opts.onAlerts?.();
    }
  };

  const poison = async (msg: JsMsg, reason: string) => {
    await quarantine(sql, "evaluator", msg, reason);
    log.error({ seq: msg.seq, reason }, "committed-batch event quarantined");
  };

  /**
   * Handles one event before the next, so (rule, device) always sees time order. Database
   * trouble is retried until it passes (keeping the event alive); an event that cannot be decoded,
   * or whose evaluation keeps failing for another reason (a bug, a bad rule), is quarantined and
   * the evaluator goes on. False: the partition was claimed by another process (the event stays unacked).
   */
  const handleOnce = async (msg: JsMsg, fence: Fence, attempt: number): Promise<boolean> => {
    let batch: CommittedBatch;
    try {
      batch = decodeCommitted(msg.string());
    } catch (err) {
      await poison(msg, `undecodable committed-batch event: ${(err as Error).message}`);
      return true;
    }
    try {
      await evaluate(batch, fence);
    } catch (err) {
      if (err instanceof FencedError) return false;
      if (isConnectionError(err) || attempt < POISON_AFTER) throw err;
      await poison(msg, `evaluation failed ${attempt + 1} times: ${errorText(err)}`);
      return true;
    }
    stats.batches++;
    stats.healthy = true;
    msg.ack();
    return true;
  };

  // Past the stop's deadline the event stays unacked: redelivered later.
  const handle = async (msg: JsMsg, fence: Fence): Promise<boolean> => {
    const done = await retryUntil((attempt) => handleOnce(msg, fence, attempt), {
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
    return !done.ok || done.value;
  };

  const runs = new Map<string, PartitionRun>();
  const kv = await KvBucket.open(broker.js, broker.jsm, `${opts.stream}_EVALUATORS`, { replicas: opts.replicas ?? 1 });
  const ttl = opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const leases: Leases = new Leases(
    kv,
    partitionNames(partitions),
    holder,
    ttl,
    {
      claimed: async (partition) => {
        const durable = consumerName(opts.durable, partition);
        const spec = { stream: opts.stream, durable, partition, holder, leaseMs: ttl };
        runs.set(partition, await runPartition(broker, sql, spec, handle, () => void leases.drop(partition), log));
      },
      released: async (partition) => {
        const run = runs.get(partition);
        runs.delete(partition);
        // Not longer than a lease's life: the lease's other work (renewals) waits for this.
        await run?.stop(Math.min(ttl / 2, Math.max(0, budget.deadline - Date.now())));
      },
    },
    log,
  );
  await leases.start();

  const sweep = async (now = Date.now()) => {
    const held = new Set(leases.mine);
    const outcomes = await sweepSilence(sql, await rules.all(), now);
    for (const [tenant, all] of outcomes) {
      const outcome = onlyDevices(all, (device) => held.has(String(partitionOf(tenant, device, partitions))));
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

  log.info({ stream: opts.stream, holder, partitions: leases.mine.length }, "evaluator started");
  return {
    stats,
    holder,
    partitions: () => leases.mine,
    sweep,
    async stop(timeoutMs: number) {
      budget.begin(timeoutMs);
      clearInterval(timer);
      changes.unsubscribe();
      await budget.within(leases.stop());
      log.info({ ...stats }, "evaluator stopped");
    },
  };
}

/** The part of a sweep's outcome about the devices `keep` accepts (the partitions this process holds). */
function onlyDevices(o: Outcome, keep: (deviceId: string) => boolean): Outcome {
  return {
    ...o,
    states: new Map([...o.states].filter(([, s]) => keep(s.deviceId))),
    open: o.open.filter((a) => keep(a.deviceId)),
    resolve: o.resolve.filter((r) => keep(r.deviceId)),
  };
}
