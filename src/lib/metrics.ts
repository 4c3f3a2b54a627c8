/**
 * Prometheus metrics (prom-client): one registry per process, served at GET /metrics.
 * Roles increment these; gauges that need a query (consumer pending, DLQ and quarantine sizes)
 * are collected at scrape time by collectors the composition root registers.
 */
import client from "prom-client";

export const registry = new client.Registry();
// prom-client names its defaults process_* and nodejs_*; the prefix makes them telemetry_process_cpu_user_seconds_total,
// telemetry_nodejs_eventloop_lag_seconds, ... (a prefix ending in process_ doubled it: docs/decisions/0200-default-metric-names.md).
client.collectDefaultMetrics({ register: registry, prefix: "telemetry_" });

const counter = (name: string, help: string, labelNames: string[] = []) =>
  new client.Counter({ name, help, labelNames, registers: [registry] });
const histogram = (name: string, help: string, buckets: number[], labelNames: string[] = []) =>
  new client.Histogram({ name, help, buckets, labelNames, registers: [registry] });

export const metrics = {
  records: counter(
    "telemetry_ingest_records_total",
    "Records by outcome (accepted, duplicate, rejected, dead_lettered, unavailable) and, for rejected, the field or the policy (unknown_device, device_limit, rate_limited)",
    ["outcome", "reason"],
  ),
  authLookups: counter(
    "telemetry_auth_lookups_total",
    "API key resolutions by result: cached, fetched (a key-store lookup), stale (answer older than the TTL used: re-read running or key store unreachable), unavailable (unseen key, key store unreachable); refused without a lookup: malformed, client_limited (the address's failed checks, 429), busy (the process's lookups per second, 503)",
    ["result"],
  ),
  mqttMessages: counter(
    "telemetry_mqtt_messages_total",
    "MQTT messages taken by the bridge, by result (processed; quarantined: invalid records, not JSON, or refused by the tenant's device policy or status)",
    ["result"],
  ),
  mqttDelayed: counter(
    "telemetry_mqtt_delayed_total",
    "MQTT messages left unacked and put back for later (nak with a delay) because their tenant or device was over its rate limit, by limit (tenant, device)",
    ["limit"],
  ),
  mqttReadings: counter("telemetry_mqtt_readings_total", "Readings from MQTT published to the telemetry stream"),
  requests: counter("telemetry_http_requests_total", "HTTP requests by route and status", ["route", "status"]),
  publishSeconds: histogram(
    "telemetry_ingest_publish_seconds",
    "Time from first publish to the last PubAck of a request",
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  ),
  publishRetries: counter("telemetry_ingest_publish_retries_total", "Publish attempts repeated after a failure"),
  writerBatches: counter("telemetry_writer_batches_total", "Batches committed by the writer"),
  writerReadings: counter("telemetry_writer_readings_total", "Readings written, by result (inserted, duplicate)", [
    "result",
  ]),
  writerFlushSeconds: histogram(
    "telemetry_writer_flush_seconds",
    "Duration of one batch transaction",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  ),
  auditRestored: counter(
    "telemetry_writer_audit_restored_total",
    "Readings the failover audit wrote after a leader election: messages the writer consumer had skipped (nats-server 2.9 clusters)",
  ),
  writerRetries: counter("telemetry_writer_retries_total", "Batch writes retried after a database error"),
  quarantined: counter("telemetry_quarantined_total", "Messages put in quarantine, by component", ["source"]),
  alerts: counter("telemetry_alerts_total", "Alert changes made by the evaluator (opened, resolved)", ["event"]),
  forcedGc: counter(
    "telemetry_memory_forced_gc_total",
    "Full garbage collections forced because RSS was above TELEMETRY_SOFT_MEMORY_LIMIT, by kind (concurrent: asked for, the loop runs on; full: synchronous, above the limit by a fifth)",
    ["kind"],
  ),
  forcedGcSeconds: counter(
    "telemetry_memory_forced_gc_seconds_total",
    "Time the event loop spent in forcing those collections, by kind",
    ["kind"],
  ),
  evaluatorErrors: counter("telemetry_evaluator_errors_total", "Failed evaluations (retried)"),
  lateReadings: counter(
    "telemetry_evaluator_late_total",
    "Rule evaluations skipped because the reading arrived later than the rule's lateness bound (buffered uploads)",
  ),
  deliveries: counter(
    "telemetry_notifications_total",
    "Notification delivery attempts by result (delivered, retried, failed)",
    ["result"],
  ),
  routeDeliveries: counter(
    "telemetry_route_deliveries_total",
    "Message-route batch delivery attempts by result (delivered, retried, failed)",
    ["result"],
  ),
};

/** A gauge computed at scrape time; failures of the probe leave the last value. */
export function scrapeGauge(
  name: string,
  help: string,
  labelNames: string[],
  collect: (set: (labels: Record<string, string>, value: number) => void) => Promise<void>,
): void {
  registry.removeSingleMetric(name); // a process that restarts its server in-process re-registers
  new client.Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      await collect((labels, value) => this.set(labels, value)).catch(() => {});
    },
  });
}
