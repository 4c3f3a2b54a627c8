/**
 * A route's cursor on the telemetry stream (decisions 0610, 0611): an ordered JetStream consumer on
 * the tenant's subjects from a sequence on, its messages buffered (at most `max`; the consumer
 * waits while the buffer is full). Only a cursor: the route's durable position is in PostgreSQL,
 * and a new reader is opened from it after any error or restart.
 */
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";
import { errorText } from "../db/errors.ts";
import { tenantFilter } from "../core/subject.ts";
import { logger } from "../lib/log.ts";

const log = logger("routes");

/** A stream message of the tenant: its sequence, payload and how many of the tenant's follow it. */
export interface Seen {
  seq: number;
  data: Uint8Array;
  pending: number;
}

export interface RouteReader {
  /** What is buffered now (taken out of the buffer); waits up to idleMs when nothing is. */
  next(idleMs: number): Promise<Seen[]>;
  /** The consumer's iterator ended (an error, or stop): open a new reader. */
  readonly ended: boolean;
  stop(): void;
}

export async function openRouteReader(
  js: JetStreamClient,
  stream: string,
  tenant: string,
  afterSeq: number,
  max: number,
  routeId: string,
): Promise<RouteReader> {
  const consumer = await js.consumers.get(stream, {
    filter_subjects: tenantFilter(tenant),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: afterSeq + 1,
  });
  const messages = await consumer.consume({ max_messages: max });
  let buffer: Seen[] = [];
  let wake = null as (() => void) | null;
  let room = null as (() => void) | null;
  let ended = false;
  void (async () => {
    for await (const m of messages) {
      buffer.push({ seq: m.seq, data: m.data, pending: m.info.pending });
      wake?.();
      if (buffer.length >= max) await new Promise<void>((resolve) => (room = resolve));
    }
  })()
    .catch((err) => log.warn({ route: routeId, err: errorText(err) }, "route consumer stopped"))
    .finally(() => {
      ended = true;
      wake?.();
    });
  return {
    get ended() {
      return ended;
    },
    async next(idleMs) {
      if (buffer.length === 0 && !ended)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, idleMs);
          function done() {
            clearTimeout(timer);
            wake = null;
            resolve();
          }
          wake = done;
        });
      const out = buffer;
      buffer = [];
      room?.();
      room = null;
      return out;
    },
    stop() {
      messages.stop();
      room?.();
      room = null;
    },
  };
}
