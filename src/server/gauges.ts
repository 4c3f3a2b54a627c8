/** Gauges read at scrape time: consumer backlogs, dead letters, quarantine and outbox sizes. */
import type { Sql } from "../db/client.ts";
import { scrapeGauge } from "../lib/metrics.ts";
import type { Broker } from "../nats/connection.ts";
import { evaluatorBacklog } from "../nats/evaluator-backlog.ts";
import { DURABLE } from "../nats/topology.ts";
import type { Writer } from "../writer/writer.ts";

export function registerGauges(deps: {
  broker: Broker;
  sql: Sql | null;
  writer: Writer | null;
  streams: { telemetry: string; committed: string; dlq: string; mqtt: string | null };
}): void {
  const { broker, sql, writer, streams } = deps;
  const consumers: Array<[string, string]> = [
    [streams.telemetry, DURABLE.writer],
    [streams.committed, DURABLE.evaluator],
    ...(streams.mqtt ? [[streams.mqtt, DURABLE.mqtt] as [string, string]] : []),
  ];
  // The evaluator's figures are summed over its partitions' consumers.
  const backlog = (stream: string, name: string) =>
    (name === DURABLE.evaluator ? evaluatorBacklog(broker.jsm, stream) : broker.jsm.consumers.info(stream, name)).catch(
      () => null,
    );
  scrapeGauge(
    "telemetry_consumer_pending",
    "Messages not yet delivered to a durable consumer",
    ["consumer"],
    async (set) => {
      for (const [stream, name] of consumers) {
        const info = await backlog(stream, name);
        if (info) set({ consumer: name }, info.num_pending);
      }
    },
  );
  scrapeGauge(
    "telemetry_consumer_ack_pending",
    "Messages delivered to a durable consumer and not yet acknowledged",
    ["consumer"],
    async (set) => {
      for (const [stream, name] of consumers) {
        const info = await backlog(stream, name);
        if (info) set({ consumer: name }, info.num_ack_pending);
      }
    },
  );
  scrapeGauge("telemetry_dlq_messages", "Messages in the dead-letter stream", [], async (set) => {
    set({}, (await broker.jsm.streams.info(streams.dlq)).state.messages);
  });
  if (streams.mqtt) {
    const mqtt = streams.mqtt;
    scrapeGauge(
      "telemetry_mqtt_stream_bytes",
      "Bytes the MQTT stream holds, by kind (stored; max: when reached, new MQTT messages are discarded)",
      ["kind"],
      async (set) => {
        const info = await broker.jsm.streams.info(mqtt);
        set({ kind: "stored" }, info.state.bytes);
        set({ kind: "max" }, info.config.max_bytes);
      },
    );
  }
  if (writer) {
    scrapeGauge("telemetry_writer_held_messages", "Broker messages the writer holds unacknowledged", [], async (set) =>
      set({}, writer.stats.held),
    );
  }
  if (sql) {
    scrapeGauge("telemetry_quarantine_messages", "Messages in quarantine", ["source"], async (set) => {
      for (const r of await sql`SELECT source, count(*)::int AS n FROM quarantine GROUP BY source`)
        set({ source: r.source }, r.n);
    });
    scrapeGauge("telemetry_outbox_pending", "Notifications waiting for delivery", [], async (set) => {
      set({}, (await sql`SELECT count(*)::int AS n FROM outbox WHERE status = 'pending'`)[0]!.n);
    });
  }
}
