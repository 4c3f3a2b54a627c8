/**
 * The JetStream topology in one place: every stream, the subjects it takes and its settings, and
 * the durable consumers with theirs.
 *
 *   stream (TELEMETRY_STREAM, default TELEMETRY)   telemetry.v1.<tenant>.<asset>    durable `writer`
 *   <stream>_COMMITTED                              telemetry.committed.v1.<tenant>.<p>  durable `evaluator_<p>`
 *                                                   telemetry.committed.v1.<tenant>  durable `evaluator` (old form)
 *   KV_<stream>_COMMITTED_EVALUATORS (KV bucket)    the evaluator processes' partition leases
 *   <stream>_DLQ                                    telemetry.dlq.v1.<tenant>        (read by `telemetry dlq`)
 *   <stream>_MQTT (only with an MQTT listener)      tenant.<tenant>.device.<id>.telemetry  durable `mqtt`
 *   ALERTS                                          alerts.v1.<tenant>               (for subscribers)
 *   core NATS, no stream                            telemetry.control.rules_changed
 *
 * The subjects the pure core builds keep their format there (core/subject.ts, core/committed.ts,
 * core/mqtt.ts); this module names the streams that hold them.
 */
import type { Config } from "../config/schema.ts";
import { COMMITTED_PREFIX } from "../core/committed.ts";
import { MQTT_SUBJECT_FILTER } from "../core/mqtt.ts";
import { tenantFilter } from "../core/subject.ts";
import type { ConsumerSettings, StreamSettings } from "./stream.ts";

/** Dead letters: `telemetry.dlq.v1.<tenant>`, the original body with the failure in headers. */
export const DLQ_PREFIX = "telemetry.dlq.v1";

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

/** How long committed-batch events are kept for the evaluator. */
const COMMITTED_MAX_AGE_MS = 24 * 3_600_000;

export type StreamConfig = Pick<
  Config,
  | "streamName"
  | "streamMaxAge"
  | "streamDuplicateWindow"
  | "streamReplicas"
  | "dlqMaxAge"
  | "mqttPort"
  | "mqttStreamMaxBytes"
>;

/** The pipeline's streams, in the order the server ensures them; the MQTT one only with an MQTT port. */
export function pipelineStreams(config: StreamConfig): StreamSettings[] {
  const defaults = { duplicateWindowMs: config.streamDuplicateWindow, replicas: config.streamReplicas };
  const streams: StreamSettings[] = [
    { name: config.streamName, subjects: [tenantFilter()], maxAgeMs: config.streamMaxAge, ...defaults },
    {
      name: committedStream(config.streamName),
      subjects: [`${COMMITTED_PREFIX}.>`],
      maxAgeMs: COMMITTED_MAX_AGE_MS,
      ...defaults,
    },
    { name: dlqStream(config.streamName), subjects: [`${DLQ_PREFIX}.>`], maxAgeMs: config.dlqMaxAge, ...defaults },
  ];
  if (config.mqttPort) {
    // Bounded: when full, new MQTT messages are discarded and the waiting ones kept (README, MQTT).
    const mqtt = {
      name: mqttStream(config.streamName),
      subjects: [MQTT_SUBJECT_FILTER],
      maxAgeMs: config.streamMaxAge,
      maxBytes: config.mqttStreamMaxBytes,
      discard: "new" as const,
    };
    streams.push({ ...mqtt, ...defaults });
  }
  return streams;
}

/** Alert events for subscribers (the notifier publishes each outbox row of kind nats here). */
export const ALERT_STREAM = "ALERTS";
const ALERT_PREFIX = "alerts.v1";
export const alertSubject = (tenant: string) => `${ALERT_PREFIX}.${tenant}`;

/** The alert stream; its duplicate window covers retries after a lost PubAck. */
export function alertStream(replicas = 1): StreamSettings {
  return {
    name: ALERT_STREAM,
    subjects: [`${ALERT_PREFIX}.>`],
    maxAgeMs: 7 * 86_400_000,
    duplicateWindowMs: 2 * 3_600_000,
    replicas,
  };
}

/** The durable consumers' names: the writer on the telemetry stream, the evaluator on the committed one, the bridge on the MQTT one. */
export const DURABLE = { writer: "writer", evaluator: "evaluator", mqtt: "mqtt" } as const;

/** The evaluator's consumers: `evaluator` (events of the old form) and `evaluator_<p>` per partition (decision 0550). */
export const isEvaluatorConsumer = (name: string) => name === DURABLE.evaluator || /^evaluator_\d+$/.test(name);

/** The evaluator's consumer (the writer's settings are TELEMETRY_ACK_WAIT and TELEMETRY_WRITER_MAX_PENDING). */
export const EVALUATOR_CONSUMER = { ackWaitMs: 60_000, maxAckPending: 256 } as const;

/** MQTT messages the bridge takes per batch. */
export const MQTT_BATCH = 500;

/** The MQTT bridge's consumer: up to four batches unacknowledged. */
export function mqttConsumer(batch: number): Pick<ConsumerSettings, "ackWaitMs" | "maxAckPending"> {
  return { ackWaitMs: 30_000, maxAckPending: batch * 4 };
}
