/**
 * MQTT bridge (runs with the ingest role when MQTT is on). nats-server's MQTT listener turns each
 * device message into a NATS message on `tenant.{t}.device.{d}.telemetry`, which the stream
 * `<stream>_MQTT` keeps; this durable consumer takes them in batches and sends their records
 * through the shared admission step (pipeline/admission) as HTTP's go: validation and
 * normalization with event ids (core/mqtt + core/record), the tenant's status, its device policy
 * and the rate limits (judgeMessages: one verdict per message), then plan → publish with ack
 * (publishReadings: per-device broker messages published to the telemetry stream with their
 * message ids), and only then acks. A QoS 1 redelivery, or a message this bridge saw before a
 * crash, yields the same event ids: no second row. This file maps the verdicts into MQTT terms:
 * there is no response to carry an error, so a message with invalid records, or from a device
 * or tenant that is refused, is recorded in the quarantine (source `mqtt`, with the reason) and
 * its valid records go on unless refused; one over a rate limit (or whose tenant's settings are
 * unreachable) is left unacked and comes back after the delay; with the broker away nothing is
 * acked and the messages come back.
 */
import type { JsMsg } from "@nats-io/jetstream";
import { describeRejections, parseMqttPayload, parseMqttSubject } from "../core/mqtt.ts";
import type { Reading } from "../core/record.ts";
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import { insertQuarantine } from "../db/quarantine.ts";
import { logger } from "../lib/log.ts";
import { metrics } from "../lib/metrics.ts";
import type { Broker } from "../nats/connection.ts";
import { BrokerUnavailable } from "../nats/publish.ts";
import { ensureDurableConsumer } from "../nats/stream.ts";
import { mqttConsumer } from "../nats/topology.ts";
import {
  judgeMessages,
  publishReadings,
  type MessageCandidate,
  type MessageDeps,
  type Verdict,
} from "../pipeline/admission.ts";

const log = logger("mqtt");
/** A message over a rate limit comes back after the bucket's delay, at most this. */
const MAX_DELAY_MS = 60_000;

export interface BridgeOptions {
  /** The stream holding the MQTT messages, and the telemetry and dead-letter streams to publish to. */
  mqttStream: string;
  stream: string;
  dlqStream: string;
  durable: string;
  recordsPerMessage: number;
  maxFutureMs: number;
  publishTimeoutMs: number;
  batch: number;
}

export interface MqttBridge {
  stop(): Promise<void>;
}

export async function startMqttBridge(
  broker: Broker,
  sql: Sql,
  policy: MessageDeps,
  o: BridgeOptions,
): Promise<MqttBridge> {
  await ensureDurableConsumer(broker.jsm, { stream: o.mqttStream, durable: o.durable, ...mqttConsumer(o.batch) });
  const consumer = await broker.js.consumers.get(o.mqttStream, o.durable);
  const messages = await consumer.consume({ max_messages: o.batch * 2 });
  // Batching without a timer: a message waits only for the batch being published; whatever
  // arrives meanwhile goes out together next (so batches grow with the load).
  const pending: JsMsg[] = [];
  let flushing: Promise<void> | null = null;
  const kick = () => {
    if (flushing || pending.length === 0) return;
    const batch = pending.splice(0, o.batch);
    flushing = handle(batch)
      .catch((err) => log.warn({ err: errorText(err) }, "MQTT bridge: publishing failed; the messages come back"))
      .finally(() => {
        flushing = null;
        kick();
      });
  };
  const loop = (async () => {
    for await (const m of messages) {
      pending.push(m);
      queueMicrotask(kick);
      while (pending.length >= o.batch * 2 && flushing) await flushing;
    }
  })();

  async function handle(msgs: JsMsg[]): Promise<void> {
    const parsedAll = msgs.map((m) => {
      const at = parseMqttSubject(m.subject);
      const parsed = at
        ? parseMqttPayload(m.string(), { ...at, nowMs: m.info.timestampNanos / 1e6, maxFutureMs: o.maxFutureMs })
        : { error: `not a device topic: ${m.subject}` };
      return { m, at, parsed };
    });
    // The tenant checks, for the messages with valid records.
    const candidates: Array<MessageCandidate & { k: number }> = [];
    parsedAll.forEach(({ at, parsed }, k) => {
      if (at && !("error" in parsed) && parsed.readings.length > 0)
        candidates.push({ k, tenant: at.tenant, deviceId: at.deviceId, records: parsed.readings.length });
    });
    const verdicts = new Map<number, Verdict>();
    (await judgeMessages(policy, candidates)).forEach((v, i) => {
      verdicts.set(candidates[i]!.k, v);
    });

    const items: Array<{ index: number; reading: Reading }> = [];
    const settle: Array<() => void> = [];
    const taken: JsMsg[] = [];
    for (const [k, { m, parsed }] of parsedAll.entries()) {
      const verdict = verdicts.get(k);
      if (verdict && "retryMs" in verdict) {
        // Over a limit (or the tenant's settings unreachable): not acked, it waits in the stream.
        m.nak(Math.min(verdict.retryMs, MAX_DELAY_MS));
        if (verdict.limit) metrics.mqttDelayed.inc({ limit: verdict.limit });
        continue;
      }
      const refusal = verdict && "refused" in verdict ? verdict.refused : null;
      const invalid =
        "error" in parsed ? parsed.error : parsed.rejected.length ? describeRejections(parsed.rejected) : null;
      const reason = [refusal, invalid].filter((r) => r !== null).join(" | ") || null;
      if (reason !== null) {
        try {
          await insertQuarantine(sql, {
            source: "mqtt",
            subject: m.subject,
            streamSeq: m.seq,
            reason,
            payload: m.string(),
          });
        } catch (err) {
          log.warn(
            { err: errorText(err) },
            "MQTT bridge: could not record a bad message in the quarantine; it will be retried",
          );
          m.nak(5_000);
          continue;
        }
        metrics.mqttMessages.inc({ result: "quarantined" });
      }
      if (!("error" in parsed) && refusal === null)
        for (const reading of parsed.readings) items.push({ index: items.length, reading });
      taken.push(m);
      settle.push(() => ("error" in parsed ? m.term() : m.ack()));
    }
    if (items.length > 0) {
      try {
        const published = await publishReadings(broker, o, items, Date.now());
        if ("refused" in published) throw new BrokerUnavailable(published.refused.detail);
        const dead = published.outcomes.filter((x) => x.status === "dead_lettered").length;
        if (dead) log.warn({ messages: dead }, "MQTT bridge: broker messages dead-lettered");
      } catch (err) {
        // Broker away: nothing is acked; the MQTT messages come back (same event ids).
        for (const m of taken) m.nak(2_000);
        throw err;
      }
      metrics.mqttReadings.inc(items.length);
    }
    for (const s of settle) s();
    metrics.mqttMessages.inc({ result: "processed" }, settle.length);
  }

  return {
    async stop() {
      await messages.close();
      await loop.catch(() => undefined);
      while (flushing) await flushing;
    },
  };
}
