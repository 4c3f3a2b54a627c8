/**
 * Creates or updates the telemetry stream and the durable consumers, idempotently. Several
 * processes may do this at once, against a NATS cluster still electing its leaders: JetStream
 * not answering yet (timeouts, 503) and losing a creation race are retried (up to 60 s).
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { backoffMs, sleep } from "../lib/backoff.ts";
import { logger } from "../lib/log.ts";

const log = logger("stream");

export interface StreamSettings {
  name: string;
  subjects: string[];
  maxAgeMs: number;
  duplicateWindowMs: number;
  replicas: number;
  /** Most bytes kept (none: only max age bounds it), and what a full stream does: drop its oldest messages (default) or refuse new ones. */
  maxBytes?: number;
  discard?: "old" | "new";
}

const SETUP_WAIT_MS = 60_000;

export function ensureStream(jsm: JetStreamManager, s: StreamSettings): Promise<void> {
  return untilSettled(`stream ${s.name}`, () => ensureStreamOnce(jsm, s));
}

async function ensureStreamOnce(jsm: JetStreamManager, s: StreamSettings): Promise<void> {
  const wanted: Partial<StreamConfig> & { name: string } = {
    name: s.name,
    subjects: s.subjects,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: s.discard === "new" ? DiscardPolicy.New : DiscardPolicy.Old,
    max_bytes: s.maxBytes ?? -1,
    max_age: nanos(s.maxAgeMs),
    duplicate_window: nanos(Math.min(s.duplicateWindowMs, s.maxAgeMs)),
    num_replicas: s.replicas,
  };
  try {
    const info = await jsm.streams.info(s.name);
    const c = info.config;
    const same =
      c.max_age === wanted.max_age &&
      c.duplicate_window === wanted.duplicate_window &&
      c.num_replicas === wanted.num_replicas &&
      c.max_bytes === wanted.max_bytes &&
      c.discard === wanted.discard &&
      JSON.stringify(c.subjects) === JSON.stringify(wanted.subjects);
    if (!same) {
      await jsm.streams.update(s.name, { ...c, ...wanted });
      log.info({ stream: s.name }, "stream settings updated");
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(wanted);
    log.info({ stream: s.name }, "stream created");
  }
}

export interface ConsumerSettings {
  stream: string;
  durable: string;
  ackWaitMs: number;
  maxAckPending: number;
}

export function ensureDurableConsumer(jsm: JetStreamManager, s: ConsumerSettings): Promise<void> {
  return untilSettled(`consumer ${s.stream}/${s.durable}`, () => ensureConsumerOnce(jsm, s));
}

async function ensureConsumerOnce(jsm: JetStreamManager, s: ConsumerSettings): Promise<void> {
  const config = {
    durable_name: s.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(s.ackWaitMs),
    max_ack_pending: s.maxAckPending,
    max_deliver: -1,
  };
  try {
    const info = await jsm.consumers.info(s.stream, s.durable);
    if (info.config.ack_wait !== config.ack_wait || info.config.max_ack_pending !== config.max_ack_pending) {
      await jsm.consumers.update(s.stream, s.durable, {
        ack_wait: config.ack_wait,
        max_ack_pending: config.max_ack_pending,
      });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(s.stream, config);
    log.info({ stream: s.stream, consumer: s.durable }, "durable consumer created");
  }
}

/**
 * Runs `once` again while it fails for a reason that passes: JetStream not answering (no meta or
 * stream leader yet: timeouts, 503) or another process having created the same thing first (the
 * next round sees it and compares). A refused configuration (other 4xx) fails at once.
 */
async function untilSettled(what: string, once: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + SETUP_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await once();
    } catch (err) {
      const refused =
        err instanceof JetStreamApiError &&
        err.status >= 400 &&
        err.status < 500 &&
        // Processes starting together on a cluster race to create the same stream: "already in
        // use" and a "not found" while another's creation settles are passing states, not refusals.
        !/already (in use|exists)|not found/i.test(err.message);
      if (refused || Date.now() >= deadline) throw err;
      const wait = backoffMs(attempt, 200, 2_000);
      log.warn(
        { what, err: (err as Error).message, attempt: attempt + 1, retryInMs: wait },
        "JetStream setup not done yet; retrying",
      );
      await sleep(wait);
    }
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 404 || /not found/i.test(err.message));
}
