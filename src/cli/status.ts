/** `telemetry status [--json]`: the pipeline at a glance, for people and scripts. */
import { defineCommand } from "citty";
import { errorText } from "../db/errors.ts";
import type { Sql } from "../db/client.ts";
import { renderJob, timescaleJobs, type TimescaleJob } from "../db/jobs.ts";
import type { Broker } from "../nats/connection.ts";
import { committedStream, dlqStream, DURABLE, mqttStream } from "../nats/topology.ts";
import { tenantFilter } from "../core/subject.ts";
import { evaluatorBacklog } from "../nats/evaluator-backlog.ts";
import { pendingAfter } from "../nats/pending.ts";
import { configOrExit, settingArgs } from "./common.ts";
import { withBroker, withDatabase } from "./services.ts";

interface RouteStatus {
  tenant: string;
  name: string;
  state: string;
  pending_batches: number;
  failed_batches: number;
  lag?: number | null;
  consumed_seq: number;
}

interface Status {
  stream:
    | { name: string; messages: number; bytes: number; first: string | null; last: string | null }
    | { error: string };
  consumers: Record<string, { pending: number; ack_pending: number; redelivered: number } | { error: string }>;
  dlq: number | { error: string };
  database: {
    reachable: boolean;
    mode?: string;
    error?: string;
    quarantine?: Record<string, number>;
    outbox?: Record<string, number>;
    /** Message routes: state, batches waiting and failed, and (from the stream) the lag. */
    routes?: RouteStatus[];
    /** TimescaleDB's background jobs; absent on plain PostgreSQL. */
    timescale_jobs?: TimescaleJob[] | { error: string };
  };
}

async function natsStatus(broker: Broker, stream: string): Promise<Pick<Status, "stream" | "consumers" | "dlq">> {
  const out: Pick<Status, "stream" | "consumers" | "dlq"> = { stream: { error: "" }, consumers: {}, dlq: 0 };
  try {
    const { state } = await broker.jsm.streams.info(stream);
    const time = (ts: string) => (state.messages > 0 ? ts : null);
    out.stream = {
      name: stream,
      messages: state.messages,
      bytes: state.bytes,
      first: time(state.first_ts),
      last: time(state.last_ts),
    };
  } catch (err) {
    out.stream = { error: errorText(err) };
  }
  for (const [s, name, optional] of [
    [stream, DURABLE.writer, false],
    [committedStream(stream), DURABLE.evaluator, false],
    [mqttStream(stream), DURABLE.mqtt, true],
  ] as const) {
    try {
      // The evaluator's figures are summed over its partitions' consumers (decision 0550).
      const c =
        name === DURABLE.evaluator ? await evaluatorBacklog(broker.jsm, s) : await broker.jsm.consumers.info(s, name);
      out.consumers[name] = { pending: c.num_pending, ack_pending: c.num_ack_pending, redelivered: c.num_redelivered };
    } catch (err) {
      if (optional && /not found/i.test(errorText(err))) continue; // MQTT never turned on
      out.consumers[name] = { error: errorText(err) };
    }
  }
  out.dlq = await broker.jsm.streams.info(dlqStream(stream)).then(
    (i) => i.state.messages,
    (err) => ({ error: errorText(err) }),
  );
  return out;
}

async function databaseStatus(sql: Sql): Promise<Status["database"]> {
  try {
    const [mode] = await sql`SELECT value FROM telemetry_meta WHERE key = 'storage_mode'`;
    const q = await sql`SELECT source, count(*)::int AS n FROM quarantine GROUP BY source`;
    const o = await sql`SELECT status, count(*)::int AS n FROM outbox WHERE status <> 'delivered' GROUP BY status`;
    const jobs = await timescaleJobs(sql).catch((err) => ({ error: errorText(err) }));
    const routes = (await sql`
      SELECT r.tenant, r.name, r.state, r.consumed_seq::float8 AS consumed_seq,
             count(b.id) FILTER (WHERE b.status = 'pending')::int AS pending_batches,
             count(b.id) FILTER (WHERE b.status = 'failed')::int AS failed_batches
      FROM routes r LEFT JOIN route_batches b ON b.route_id = r.id
      GROUP BY r.id ORDER BY r.tenant, r.name`.catch(() => [])) as unknown as RouteStatus[];
    return {
      reachable: true,
      mode: mode?.value ?? "not migrated",
      quarantine: Object.fromEntries(q.map((r) => [r.source, r.n])),
      outbox: Object.fromEntries(o.map((r) => [r.status, r.n])),
      routes: [...routes],
      ...(jobs ? { timescale_jobs: jobs } : {}),
    };
  } catch (err) {
    return { reachable: false, error: errorText(err) };
  }
}

function render(s: Status): string {
  const lines: string[] = [];
  if ("error" in s.stream) lines.push(`stream:     unreachable (${s.stream.error})`);
  else
    lines.push(
      `stream:     ${s.stream.name}: ${s.stream.messages} messages, ${(s.stream.bytes / 1_048_576).toFixed(1)} MiB, ${s.stream.first ?? "-"} .. ${s.stream.last ?? "-"}`,
    );
  for (const [name, c] of Object.entries(s.consumers)) {
    lines.push(
      `consumer:   ${name.padEnd(10)} ${"error" in c ? `unavailable (${c.error})` : `pending ${c.pending}, unacknowledged ${c.ack_pending}, redelivered ${c.redelivered}`}`,
    );
  }
  lines.push(`dead letters: ${typeof s.dlq === "number" ? s.dlq : `unknown (${s.dlq.error})`}`);
  const d = s.database;
  if (!d.reachable) lines.push(`database:   UNREACHABLE (${d.error})`);
  else {
    lines.push(`database:   reachable, storage ${d.mode}`);
    const q = Object.entries(d.quarantine ?? {});
    lines.push(`quarantine: ${q.length ? q.map(([k, v]) => `${k} ${v}`).join(", ") : "empty"}`);
    const o = Object.entries(d.outbox ?? {});
    lines.push(`outbox:     ${o.length ? o.map(([k, v]) => `${k} ${v}`).join(", ") : "nothing waiting"}`);
    for (const r of d.routes ?? [])
      lines.push(
        `route:      ${r.tenant}/${r.name} ${r.state}, lag ${r.lag ?? "unknown"}, pending ${r.pending_batches}, failed ${r.failed_batches}`,
      );
    const jobs = d.timescale_jobs;
    if (jobs && "error" in jobs) lines.push(`jobs:       unknown (${jobs.error})`);
    else if (jobs)
      lines.push(
        ...(jobs.length
          ? jobs.map((j, i) => `${i === 0 ? "jobs:      " : "           "} ${renderJob(j)}`)
          : ["jobs:       none"]),
      );
  }
  return lines.join("\n");
}

export const status = defineCommand({
  meta: { name: "status", description: "Stream, consumers, dead letters, quarantine, database and outbox at a glance" },
  args: {
    ...settingArgs(["databaseUrl", "natsUrl", "dataDir", "streamName", "logLevel"]),
    json: { type: "boolean", description: "Print JSON" },
  },
  async run({ args }) {
    const config = configOrExit(args);
    const nats = await withBroker(config, (broker) => natsStatus(broker, config.streamName)).catch((err) => ({
      stream: { error: (err as Error).message },
      consumers: {},
      dlq: { error: (err as Error).message },
    }));
    const database = await withDatabase(config, databaseStatus).catch((err) => ({
      reachable: false,
      error: (err as Error).message,
    }));
    const routes = database.reachable && "routes" in database ? (database.routes ?? []) : [];
    if (routes.length)
      await withBroker(config, async (broker) => {
        for (const r of routes)
          r.lag = await pendingAfter(broker.jsm, config.streamName, tenantFilter(r.tenant), r.consumed_seq).catch(
            () => null,
          );
      }).catch(() => {});
    const s: Status = { ...nats, database };
    process.stdout.write(`${args.json ? JSON.stringify(s, null, 2) : render(s)}\n`);
    const healthy = !("error" in s.stream) && s.database.reachable;
    process.exit(healthy ? 0 : 1);
  },
});
