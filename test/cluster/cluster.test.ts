/**
 * Scale-out: a 3-node NATS cluster on loopback (the streams with 3 replicas), two ingest processes
 * and two writer processes (one durable consumer shared), all four started at once (migrations,
 * key bootstrap, stream and consumer creation race). Retrying clients spread their requests over
 * both ingest processes; under load one node is SIGKILLed and restarted, three times: the stream
 * leader, the writer consumer's leader, then a follower. Every reading answered 202 must be in
 * PostgreSQL exactly once, nothing dead-lettered, the consumer drained, and both writers used.
 */
import { afterAll, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { jetstream } from "@nats-io/jetstream";
import { decodeEnvelope } from "../../src/core/envelope.ts";
import { telemetrySubject } from "../../src/core/subject.ts";
import { startNatsCluster, type NatsCluster } from "../helpers/nats-cluster.ts";
import { check, freshDatabase } from "../helpers/services.ts";
import {
  consumerPending,
  Db,
  faultRecord,
  KEY,
  TENANT,
  loadClients,
  logTail,
  now,
  report,
  seconds,
  spawnServer,
  stopAll,
  type ServerProcess,
} from "../fault/harness.ts";

const DEVICES = 2_000;
const READINGS = 200_000;
const CLIENTS = 6;
const BATCH = 250;
const STREAM = "TELEMETRY";
/** Which node each kill takes down, spread evenly over the load. */
const KILLS = ["stream-leader", "consumer-leader", "follower"] as const;
/** How long a killed node stays down (holding the fault, not waiting for the thing under test). */
const DOWN_MS = 3_000;

interface NodeKill {
  kind: (typeof KILLS)[number];
  node: string;
  /** From the restart until the stream and consumer were led again with every replica current. */
  rejoinMs: number;
}

const cleanup: AsyncDisposable[] = [];
afterAll(async () => {
  await stopAll();
  for (const c of cleanup.reverse()) await c[Symbol.asyncDispose]();
}, 60_000);

test("3-node NATS cluster, 2 ingest + 2 writer processes, nodes SIGKILLed under load: exactly once", async () => {
  const started = now();
  const cluster = await startNatsCluster();
  cleanup.push(cluster);
  const dbUrl = await freshDatabase("fault_cluster");
  const env = {
    NATS_URL: cluster.url,
    DATABASE_URL: dbUrl,
    TELEMETRY_STREAM_REPLICAS: "3",
    TELEMETRY_FLUSH_INTERVAL: "100ms",
    LOG_LEVEL: process.env.CLUSTER_LOG_LEVEL ?? "warn",
  };
  // All four at once: they race to migrate, bootstrap keys and create the streams and the consumer.
  const servers: ServerProcess[] = await Promise.all([
    spawnServer(env, "ingest", { name: "ingest#1" }),
    spawnServer(env, "ingest", { name: "ingest#2" }),
    spawnServer(env, "writer", { name: "writer#1" }),
    spawnServer(env, "writer", { name: "writer#2" }),
  ]);
  const ingests = servers.filter((s) => s.roles === "ingest");
  const writers = servers.filter((s) => s.roles === "writer");
  await cluster.settled(STREAM, "writer");
  const replicas = await cluster.withJsm(async (jsm) =>
    Promise.all(
      [STREAM, `${STREAM}_COMMITTED`, `${STREAM}_DLQ`].map(
        async (s) => (await jsm.streams.info(s)).config.num_replicas,
      ),
    ),
  );
  const db = new Db(dbUrl);
  cleanup.push(db);

  let turn = 0;
  const load = loadClients({
    url: () => ingests[turn++ % ingests.length]!.url,
    key: KEY,
    records: READINGS,
    clients: CLIENTS,
    batch: BATCH,
    record: (i) => faultRecord(i, DEVICES),
  });
  const loadStarted = now();
  try {
    const kills = await load.guard(killNodes(cluster, () => load.acceptedRecords));
    const summary = await load.done;
    const expected = READINGS - summary.deadLettered; // dead letters never reach the database (and fail the test below)
    const final = await check(
      async () => {
        const s = await db.stats();
        return s.rows >= expected && s;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `${expected} rows` },
    );
    const drainedS = seconds(loadStarted);
    const pending = await check(
      async () => {
        const p = await consumerPending(cluster.url);
        return p.pending + p.ackPending === 0 && p;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: "writer consumer drained" },
    );
    const dlq = await cluster.withJsm(async (jsm) => (await jsm.streams.info(`${STREAM}_DLQ`)).state.messages);
    const batchesPerWriter = await Promise.all(writers.map((w) => metric(w, "telemetry_writer_batches_total")));
    const requestsPerIngest = await Promise.all(ingests.map((s) => metric(s, "telemetry_http_requests_total")));
    // Readings the failover audit wrote: messages the writer consumer skipped in a leader change (nats-server 2.9).
    const auditRestored = (
      await Promise.all(writers.map((w) => metric(w, "telemetry_writer_audit_restored_total")))
    ).reduce((a, b) => a + b, 0);

    report("CLUSTER", {
      readings: READINGS,
      nodes: cluster.nodes.length,
      replicas: replicas.join(","),
      node_kills: kills.length,
      killed: kills.map((k) => `${k.node}(${k.kind})`).join(","),
      down_s: DOWN_MS / 1000,
      rejoin_ms: kills.map((k) => k.rejoinMs).join(","),
      rows: final.rows,
      audit_restored: auditRestored,
      duplicates: final.rows - final.distinct,
      requests: summary.requests,
      "503s": summary.statuses["503"] ?? 0,
      errors: summary.statuses.error ?? 0,
      broker_duplicates: summary.duplicate,
      // PubAcks {"duplicate":true,"seq":0} (a copy only staged by a leader), retried instead of taken as stored
      staged_duplicates: ingests.reduce(
        (n, s) => n + s.lines.filter((l) => l.includes("duplicate PubAck without a sequence")).length,
        0,
      ),
      dead_lettered: summary.deadLettered,
      dlq_messages: dlq,
      pending: pending.pending + pending.ackPending,
      writer_batches: batchesPerWriter.join(","),
      ingest_requests: requestsPerIngest.join(","),
      load_s: summary.seconds,
      drained_s: drainedS,
      seconds: seconds(started),
    });
    expect(replicas).toEqual([3, 3, 3]);
    expect(kills.map((k) => k.kind)).toEqual([...KILLS]);
    expect(summary.deadLettered).toBe(0);
    expect(dlq).toBe(0);
    expect(final).toEqual({ rows: READINGS, distinct: READINGS });
    for (const n of [...batchesPerWriter, ...requestsPerIngest]) expect(n).toBeGreaterThan(0); // every process took part
  } catch (err) {
    load.stop();
    console.log(logTail(servers));
    console.log(await diagnose(cluster, db, writers).catch((e) => `diagnosis failed: ${(e as Error).message}`));
    for (const s of servers)
      await Bun.write(
        `${tmpdir()}/telemetry-cluster-${process.pid}-${s.name.replace("#", "")}.log`,
        s.lines.join("\n"),
      );
    console.log(`full process logs: ${tmpdir()}/telemetry-cluster-${process.pid}-*.log`);
    throw err;
  }
}, 480_000);

/** Kills a node when the load passes 1/(n+1), 2/(n+1), ... of the readings; holds it down; restarts it; waits for the replicas to catch up. */
async function killNodes(cluster: NatsCluster, accepted: () => number): Promise<NodeKill[]> {
  const kills: NodeKill[] = [];
  for (const [k, kind] of KILLS.entries()) {
    const threshold = Math.floor(((k + 1) * READINGS) / (KILLS.length + 1));
    await check(() => accepted() >= threshold, {
      timeoutMs: 120_000,
      intervalMs: 10,
      what: `${threshold} readings accepted before kill ${k + 1}`,
    });
    const leaders = [await cluster.leader(STREAM), await cluster.leader(STREAM, "writer")];
    const followers = cluster.nodes.filter((n) => !leaders.includes(n.name)).map((n) => n.name);
    const name =
      kind === "stream-leader"
        ? leaders[0]!
        : kind === "consumer-leader"
          ? leaders[1]!
          : (followers.find((f) => !kills.some((k) => k.node === f)) ??
            followers[0] ??
            cluster.nodes.find((n) => n.name !== leaders[0])!.name);
    const node = cluster.node(name);
    await node.kill();
    await Bun.sleep(DOWN_MS);
    await node.start();
    const restarted = now();
    await cluster.settled(STREAM, "writer", 90_000);
    kills.push({ kind, node: name, rejoinMs: Math.round(now() - restarted) });
  }
  return kills;
}

/** Where the pipeline stands, for a failure report: each part on its own, so one failing does not hide the others. */
async function diagnose(cluster: NatsCluster, db: Db, writers: ServerProcess[]): Promise<string> {
  const part = (p: Promise<unknown>) => p.catch((e) => `failed: ${(e as Error).message}`);
  const consumer = part(
    cluster.withJsm(async (jsm) => {
      const {
        num_pending,
        num_ack_pending,
        num_waiting,
        num_redelivered,
        delivered,
        ack_floor,
        cluster: c,
      } = await jsm.consumers.info(STREAM, "writer");
      return { num_pending, num_ack_pending, num_waiting, num_redelivered, delivered, ack_floor, cluster: c };
    }),
  );
  const perWriter = writers.map((w) =>
    part(metric(w, "telemetry_writer_batches_total").then((n) => `${w.name}: batches ${n}`)),
  );
  return JSON.stringify({
    db: await part(db.stats()),
    quarantined: await part(db.quarantined()),
    consumer: await consumer,
    writers: await Promise.all(perWriter),
    missing: await part(missing(cluster, db)),
  });
}

/** Readings (by index) not in the database, and where the stream has them (stream sequence) if it does. */
async function missing(cluster: NatsCluster, db: Db): Promise<unknown> {
  const indexes = await db.missingSeqs(READINGS);
  const found: Record<number, string> = {};
  await cluster.withJsm(async (_, nc) => {
    const js = jetstream(nc);
    for (const i of indexes.slice(0, 10)) {
      const consumer = await js.consumers.get(STREAM, {
        filter_subjects: telemetrySubject(TENANT, `dev-${i % DEVICES}`),
      });
      let left = (await consumer.info()).num_pending;
      found[i] = "not in the stream";
      for (let got = 1; left > 0 && got > 0; ) {
        got = 0;
        for await (const m of await consumer.fetch({ max_messages: Math.min(left, 500), expires: 2_000 })) {
          left--;
          got++;
          if (decodeEnvelope(m.string()).readings.some((r) => r.metrics?.seq === i)) found[i] = `stream seq ${m.seq}`;
        }
      }
    }
  });
  return { count: indexes.length, first: indexes.slice(0, 10), found };
}

/** Sum of a counter over all its label sets, from a process's /metrics. */
async function metric(server: ServerProcess, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  let sum = 0;
  const sample = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`);
  for (const line of text.split("\n")) sum += Number(sample.exec(line)?.[2] ?? 0);
  return sum;
}
