/** The evaluator's backlog, summed over its consumers (one per evaluation partition, plus the old-form one; decision 0550). */
import type { JetStreamManager } from "@nats-io/jetstream";
import { isEvaluatorConsumer } from "./topology.ts";

export interface Backlog {
  num_pending: number;
  num_ack_pending: number;
  num_redelivered: number;
}

export async function evaluatorBacklog(jsm: JetStreamManager, committedStream: string): Promise<Backlog> {
  const out: Backlog = { num_pending: 0, num_ack_pending: 0, num_redelivered: 0 };
  for (const c of await jsm.consumers.list(committedStream).next()) {
    if (!isEvaluatorConsumer(c.name)) continue;
    out.num_pending += c.num_pending;
    out.num_ack_pending += c.num_ack_pending;
    out.num_redelivered += c.num_redelivered;
  }
  return out;
}
