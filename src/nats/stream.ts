/** Creates or updates the telemetry stream and the durable consumers, idempotently. */
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
import { logger } from "../lib/log.ts";

const log = logger("stream");

export interface StreamSettings {
  name: string;
  subjects: string[];
  maxAgeMs: number;
  duplicateWindowMs: number;
  replicas: number;
}

export async function ensureStream(jsm: JetStreamManager, s: StreamSettings): Promise<void> {
  const wanted: Partial<StreamConfig> & { name: string } = {
    name: s.name,
    subjects: s.subjects,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
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

export async function ensureDurableConsumer(jsm: JetStreamManager, s: ConsumerSettings): Promise<void> {
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
      await jsm.consumers.update(s.stream, s.durable, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(s.stream, config);
    log.info({ stream: s.stream, consumer: s.durable }, "durable consumer created");
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 404 || /not found/i.test(err.message));
}

/** The committed-batch events and the dead letters live in their own streams next to the telemetry stream. */
export function committedStream(telemetryStream: string): string {
  return `${telemetryStream}_COMMITTED`;
}

export function dlqStream(telemetryStream: string): string {
  return `${telemetryStream}_DLQ`;
}

/** MQTT device messages (nats-server's MQTT listener) wait here for the bridge. */
export function mqttStream(telemetryStream: string): string {
  return `${telemetryStream}_MQTT`;
}
