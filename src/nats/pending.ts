/** How many messages on a subject filter of a stream come after a sequence (a message route's lag). */
import { AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";

/** Asks JetStream with a short-lived consumer that never receives a message (no one pulls). */
export async function pendingAfter(
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  seq: number,
): Promise<number> {
  const info = await jsm.consumers.add(stream, {
    filter_subject: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: seq + 1,
    ack_policy: AckPolicy.None,
    inactive_threshold: nanos(10_000),
    mem_storage: true,
  });
  await jsm.consumers.delete(stream, info.name).catch(() => {});
  return info.num_pending;
}
