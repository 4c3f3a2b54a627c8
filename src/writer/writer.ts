/**
 * Writer role: a durable JetStream consumer that batches readings into PostgreSQL.
 * Acks flow back only after COMMIT and after the committed-batch event for the evaluator is out; on a database error nothing is acked or dropped: the batch is
 * retried with backoff while the held messages are kept alive with working(), and the consumer's
 * max_ack_pending bounds what is held, so an outage backs up into JetStream, not into memory.
 */
import type { JsMsg } from "@nats-io/jetstream";
import { Batch } from "../core/batch.ts";
import { OrderedAcks } from "../core/ordered-acks.ts";
import { committedEvents, summarizeCommitted } from "../core/committed.ts";
import { DEFAULT_PARTITIONS, partitionSubject, splitByPartition } from "../core/partition.ts";
import { decodeEnvelope, type Envelope } from "../core/envelope.ts";
import type { Sql } from "../db/client.ts";
import { errorText, isRetryable } from "../db/errors.ts";
import { logger } from "../lib/log.ts";
import type { Broker } from "../nats/connection.ts";
import type { QuarantineRow } from "../db/quarantine.ts";
import { type Retried, retryUntil } from "../pipeline/retry.ts";
import { StopBudget } from "../pipeline/stop.ts";
import { consumeDurable, quarantineRow, terminate } from "../pipeline/worker.ts";
import { writeBatch } from "./sink.ts";
import { metrics } from "../lib/metrics.ts";

const log = logger("writer");

export interface WriterOptions {
  stream: string;
  /** Stream of the committed-batch events (see core/committed.ts). */
  committedStream: string;
  /** Evaluation partitions the events are cut into (TELEMETRY_EVALUATOR_PARTITIONS, decision 0550). */
  partitions?: number;
  durable: string;
  batchSize: number;
  flushIntervalMs: number;
  maxPending: number;
  ackWaitMs: number;
  /** Batches written at once, each on its own connection (default 2). */
  flushes?: number;
}

const DEFAULT_FLUSHES = 2;
const UPSERT_AFTER_CONFLICT = 20;
/** Largest committed-batch event (half of nats-server's default max_payload); bigger summaries are cut by device. */
const MAX_EVENT_BYTES = 512 * 1024;

interface Item {
  msg: JsMsg;
  envelope?: Envelope;
  poison?: QuarantineRow;
}

export interface WriterStats {
  batches: number;
  readings: number;
  inserted: number;
  quarantined: number;
  retries: number;
  lastFlushMs: number;
  held: number;
}

export interface Writer {
  readonly stats: WriterStats;
  /** True while the last write attempt succeeded (or none failed yet). */
  readonly healthy: boolean;
  /** Stops consuming, writes and acks what is held (within timeoutMs), then returns. */
  stop(timeoutMs: number): Promise<void>;
}

export async function startWriter(broker: Broker, sql: Sql, opts: WriterOptions): Promise<Writer> {
  const stats: WriterStats = {
    batches: 0,
    readings: 0,
    inserted: 0,
    quarantined: 0,
    retries: 0,
    lastFlushMs: 0,
    held: 0,
  };
  const flushes = Math.max(1, opts.flushes ?? DEFAULT_FLUSHES);
  // A batch also closes at its share of the messages the consumer lets us hold, so with small
  // messages (one reading each) `flushes` batches can still be written while the next one fills.
  const batch = new Batch<Item>(
    opts.batchSize,
    opts.flushIntervalMs,
    Math.max(1, Math.floor(opts.maxPending / (flushes + 1))),
  );
  let healthy = true;
  const budget = new StopBudget();
  /** After a COPY met stored events, the next batches go the upsert way (redeliveries come in runs). */
  let upsertBatches = 0;

  const onMessage = (msg: JsMsg) => {
    const item: Item = { msg };
    try {
      item.envelope = decodeEnvelope(msg.string());
    } catch (err) {
      item.poison = quarantineRow("writer", msg, `undecodable message: ${(err as Error).message}`);
    }
    batch.add(item, item.envelope?.readings.length ?? 1, Date.now());
    if (batch.isFull()) cut();
  };

  /**
   * Up to `flushes` batches are written at once, each in its own transaction on its own
   * connection; they are announced and acked strictly in the order they were cut, so the
   * evaluator sees committed-batch events in consumption order, as with one flush at a time.
   */
  const acks = new OrderedAcks<Item>({
    concurrency: flushes,
    write: (items) => writeWithRetry(items),
    announce: (items) => announceWithRetry(items),
    settle: (items) => settle(items),
    onWriteError: (err) =>
      log.error(
        { err: (err as Error).message },
        "batch write failed unexpectedly; its messages stay unacked and will be redelivered",
      ),
  });

  const cut = () => {
    if (batch.length === 0) return;
    acks.push(batch.take());
  };

  /** Writes a batch, retrying retryable errors. False only when shutdown cut the retries short. */
  const writeWithRetry = async (items: Item[]): Promise<boolean> => {
    for (;;) {
      let started = 0;
      let written: Retried<void>;
      try {
        written = await retryUntil(
          async () => {
            started = performance.now();
            await write(items);
          },
          {
            baseMs: 100,
            maxMs: 5_000,
            until: () => budget.deadline,
            retryable: isRetryable,
            onError: (err, attempt, wait) => {
              healthy = false;
              stats.retries++;
              metrics.writerRetries.inc();
              if (wait !== null)
                log.warn(
                  { err: errorText(err), attempt: attempt + 1, retryInMs: wait },
                  "batch write failed; retrying",
                );
            },
          },
        );
      } catch (err) {
        // Refused as data.
        if (items.length > 1) return isolate(items);
        const item = items[0]!;
        if (item.envelope) {
          // This one message is refused as data: keep it in quarantine instead.
          item.poison = quarantineRow("writer", item.msg, `refused by the database: ${errorText(err)}`);
          item.envelope = undefined;
          continue;
        }
        log.error(
          {
            err: errorText(err),
            subject: item.msg.subject,
            seq: item.msg.seq,
            payload: item.poison?.payload.slice(0, 2_000),
          },
          "could not even quarantine a message; terminating it",
        );
        return true;
      }
      if (!written.ok) {
        log.warn(
          { messages: items.length },
          "shutdown deadline reached with an unwritten batch; it stays unacked and will be redelivered",
        );
        return false;
      }
      stats.lastFlushMs = performance.now() - started;
      metrics.writerFlushSeconds.observe(stats.lastFlushMs / 1000);
      if (!healthy) log.info({ attempts: written.attempts }, "database writes recovered");
      healthy = true;
      return true;
    }
  };

  /**
   * Tells the evaluator what was committed, before acking: a crash in between republishes the
   * same summary (same message id), never loses it. False only when shutdown cut retries short.
   */
  const announceWithRetry = async (items: Item[]): Promise<boolean> => {
    const events = summarizeCommitted(items.flatMap((i) => (i.envelope ? [i.envelope] : [])))
      .flatMap((b) => splitByPartition(b, opts.partitions ?? DEFAULT_PARTITIONS))
      .flatMap(({ partition, batch }) => committedEvents(batch, MAX_EVENT_BYTES).map((e) => ({ partition, e })));
    // Parts go to different partitions (or hold different devices): published concurrently, so P
    // partitions cost one round trip per batch, not P.
    const sent = await Promise.all(
      events.map(async ({ partition, e }) => {
        let staged = 0;
        const published = await retryUntil(
          async () => {
            const msgID = staged < 3 ? e.msgId : `${e.msgId}.${staged}`;
            const ack = await broker.js.publish(partitionSubject(e.batch.tenant, partition), e.body, {
              msgID,
              expect: { streamName: opts.committedStream },
            });
            if (ack.duplicate && ack.seq === 0) {
              // A copy only staged by a stream leader (see nats/publish.ts), not stored. If that keeps
              // coming back, the event goes out under another id (a repeated event is stale to the evaluator).
              staged++;
              throw new Error("JetStream reports a duplicate of an event it has not stored (seq 0)");
            }
          },
          {
            baseMs: 100,
            maxMs: 5_000,
            until: () => budget.deadline,
            onError: (err, attempt, wait) => {
              if (wait !== null)
                log.warn(
                  { err: (err as Error).message, attempt: attempt + 1, retryInMs: wait },
                  "publishing the committed-batch event failed; retrying",
                );
            },
          },
        );
        return published.ok;
      }),
    );
    return sent.every(Boolean);
  };

  /** A batch the database refuses as data: write it message by message so only the bad ones are quarantined. */
  const isolate = async (items: Item[]): Promise<boolean> => {
    for (const item of items) if (!(await writeWithRetry([item]))) return false;
    return true;
  };

  const write = async (items: Item[]) => {
    const envelopes = items.flatMap((i) => (i.envelope ? [i.envelope] : []));
    const poison = items.flatMap((i) => (i.poison ? [i.poison] : []));
    const redelivered = items.some((i) => i.msg.redelivered);
    const prefer = redelivered || upsertBatches > 0 ? "upsert" : "copy";
    if (upsertBatches > 0) upsertBatches--;
    const result = await writeBatch(sql, envelopes, poison, { prefer });
    if (result.conflict) upsertBatches = UPSERT_AFTER_CONFLICT;
    stats.batches++;
    stats.readings += result.readings;
    stats.inserted += result.inserted;
    stats.quarantined += poison.length;
    metrics.writerBatches.inc();
    metrics.writerReadings.inc({ result: "inserted" }, result.inserted);
    metrics.writerReadings.inc({ result: "duplicate" }, result.readings - result.inserted);
    if (poison.length) metrics.quarantined.inc({ source: "writer" }, poison.length);
  };

  const settle = (items: Item[]) => {
    for (const item of items) {
      if (item.poison)
        log.warn({ subject: item.msg.subject, seq: item.msg.seq, reason: item.poison.reason }, "message quarantined");
      if (item.poison) terminate(item.msg);
      else item.msg.ack();
    }
  };

  const messages = await consumeDurable(broker, log, {
    stream: opts.stream,
    durable: opts.durable,
    ackWaitMs: opts.ackWaitMs,
    maxAckPending: opts.maxPending,
    maxMessages: Math.min(opts.maxPending, 1_000),
    callback: onMessage,
  });
  // Keep held messages from being redelivered while a batch waits or retries.
  const keepAlive = setInterval(
    () => {
      const held = acks.held();
      stats.held = held.length + batch.length;
      for (const item of held) item.msg.working();
    },
    Math.max(500, Math.floor(opts.ackWaitMs / 3)),
  );
  const ticker = setInterval(
    () => {
      if (batch.isDue(Date.now())) cut();
    },
    Math.max(5, Math.min(100, Math.floor(opts.flushIntervalMs / 4))),
  );

  log.info(
    { stream: opts.stream, durable: opts.durable, batchSize: opts.batchSize, flushIntervalMs: opts.flushIntervalMs },
    "writer started",
  );

  return {
    stats,
    get healthy() {
      return healthy;
    },
    async stop(timeoutMs: number) {
      if (budget.stopping) return;
      budget.begin(timeoutMs);
      await messages.close().catch(() => {});
      clearInterval(ticker);
      cut();
      const done = acks.whenIdle();
      // Keep the deadline even if a write is stuck (a pool waiting to reconnect): what is not acked
      // is redelivered, and a write still in flight is made harmless by the event-id key.
      await budget.within(done);
      clearInterval(keepAlive);
      log.info({ ...stats }, "writer stopped");
    },
  };
}
