/**
 * One evaluation partition while this process holds its lease (decision 0550): the partition's
 * fence claimed in PostgreSQL, then its durable consumer (one filter subject, which nats-server
 * 2.9 supports) read one event at a time. A consumer that still has events delivered to an earlier
 * holder and not acked is re-created from its ack floor, so those come here at once instead of
 * after the ack wait; the fence's sequence keeps an event already written from being evaluated again.
 */
import { AckPolicy, DeliverPolicy, JetStreamApiError, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { partitionFilter } from "../core/partition.ts";
import type { Sql } from "../db/client.ts";
import type { Logger } from "../lib/log.ts";
import type { Broker } from "../nats/connection.ts";
import { EVALUATOR_CONSUMER } from "../nats/topology.ts";
import { PULL_EXPIRES_MS } from "../pipeline/worker.ts";
import { claimPartition, type Fence } from "./fence.ts";

export interface PartitionRun {
  /** Stops reading; resolves when the event in hand is done, or at the deadline. */
  stop(timeoutMs: number): Promise<void>;
}

export interface PartitionSpec {
  stream: string;
  /** The consumer's name. */
  durable: string;
  /** "legacy" or "0".."P-1". */
  partition: string;
  holder: string;
  /** The lease's life: the fence's idle limit, and a third of it the claim's wait for the row. */
  leaseMs: number;
}

/** Handles one event under its fence; returns false when the fence turned out to be lost. */
export type PartitionHandler = (msg: JsMsg, fence: Fence) => Promise<boolean>;

export async function runPartition(
  broker: Broker,
  sql: Sql,
  spec: PartitionSpec,
  handle: PartitionHandler,
  onFenced: () => void,
  log: Logger,
): Promise<PartitionRun> {
  const name = `${spec.stream}/${spec.durable}`;
  const { epoch } = await claimPartition(sql, name, spec.holder, spec.leaseMs / 3);
  await adoptConsumer(broker.jsm, spec.stream, spec.durable, partitionFilter(spec.partition));
  const consumer = await broker.js.consumers.get(spec.stream, spec.durable);
  const messages = await consumer.consume({ max_messages: 64, expires: PULL_EXPIRES_MS });
  let stopping = false;
  const loop = (async () => {
    for await (const msg of messages) {
      if (stopping) break;
      if (!(await handle(msg, { name, epoch, seq: msg.seq, idleMs: spec.leaseMs }))) {
        log.warn({ partition: spec.partition }, "partition claimed by another process; stopping here");
        onFenced();
        break;
      }
      if (stopping) break;
    }
  })().catch((err) => log.error({ partition: spec.partition, err: (err as Error).message }, "partition loop ended"));
  log.debug({ partition: spec.partition, epoch }, "partition claimed");
  return {
    async stop(timeoutMs: number) {
      stopping = true;
      await messages.close().catch(() => {});
      await Promise.race([loop, Bun.sleep(timeoutMs)]);
    },
  };
}

/**
 * Makes the partition's consumer exist with its filter. Left as it is when nothing is in flight;
 * otherwise (events delivered to a holder gone or stopped, or a consumer of the old form without
 * the filter) re-created to start right after its ack floor.
 */
async function adoptConsumer(jsm: JetStreamManager, stream: string, durable: string, filter: string): Promise<void> {
  const settings = {
    ack_wait: nanos(EVALUATOR_CONSUMER.ackWaitMs),
    max_ack_pending: EVALUATOR_CONSUMER.maxAckPending,
  };
  let start = 0;
  try {
    const info = await jsm.consumers.info(stream, durable);
    if (info.config.filter_subject === filter && info.num_ack_pending === 0) return;
    start = info.ack_floor.stream_seq + 1;
    await jsm.consumers.delete(stream, durable);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || !/not found/i.test(err.message)) throw err;
  }
  await jsm.consumers.add(stream, {
    durable_name: durable,
    filter_subject: filter,
    ack_policy: AckPolicy.Explicit,
    max_deliver: -1,
    ...settings,
    ...(start > 0
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start }
      : { deliver_policy: DeliverPolicy.All }),
  });
}
