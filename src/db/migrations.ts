/** The migrations, embedded in the executable. Append only; never edit one that has shipped. */
import init from "../../migrations/0001_init.sql" with { type: "text" };
import alerts from "../../migrations/0002_alerts.sql" with { type: "text" };
import tenants from "../../migrations/0003_tenants.sql" with { type: "text" };
import mqtt from "../../migrations/0004_mqtt.sql" with { type: "text" };
import deviceKeys from "../../migrations/0005_device_keys.sql" with { type: "text" };
import lateData from "../../migrations/0006_late_data.sql" with { type: "text" };
import lineProtocol from "../../migrations/0007_line_protocol.sql" with { type: "text" };
import routes from "../../migrations/0008_routes.sql" with { type: "text" };
import evaluatorPartitions from "../../migrations/0009_evaluator_partitions.sql" with { type: "text" };
import routeInflight from "../../migrations/0010_route_inflight.sql" with { type: "text" };
import devicesFillfactor from "../../migrations/0011_devices_fillfactor.sql" with { type: "text" };
import hypertables from "../../migrations/timescaledb/0001_hypertables.sql" with { type: "text" };
import rollupHypertable from "../../migrations/timescaledb/0002_rollups.sql" with { type: "text" };
import rollupCompression from "../../migrations/timescaledb/0003_rollup_compression.sql" with { type: "text" };

export interface Migration {
  name: string;
  sql: string;
  /** "always", or only when the database runs TimescaleDB. */
  when: "always" | "timescaledb";
}

export const MIGRATIONS: readonly Migration[] = [
  { name: "0001_init", sql: init, when: "always" },
  { name: "timescaledb/0001_hypertables", sql: hypertables, when: "timescaledb" },
  { name: "0002_alerts", sql: alerts, when: "always" },
  { name: "timescaledb/0002_rollups", sql: rollupHypertable, when: "timescaledb" },
  { name: "0003_tenants", sql: tenants, when: "always" },
  { name: "0004_mqtt", sql: mqtt, when: "always" },
  { name: "timescaledb/0003_rollup_compression", sql: rollupCompression, when: "timescaledb" },
  { name: "0005_device_keys", sql: deviceKeys, when: "always" },
  { name: "0006_late_data", sql: lateData, when: "always" },
  { name: "0007_line_protocol", sql: lineProtocol, when: "always" },
  { name: "0008_routes", sql: routes, when: "always" },
  { name: "0009_evaluator_partitions", sql: evaluatorPartitions, when: "always" },
  { name: "0010_route_inflight", sql: routeInflight, when: "always" },
  { name: "0011_devices_fillfactor", sql: devicesFillfactor, when: "always" },
];
