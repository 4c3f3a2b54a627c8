/**
 * Several evaluator processes share the evaluation (decision 0550): committed-batch events in
 * partitions by device, partition leases in a KV bucket, outcomes written under PostgreSQL fences.
 * Each scenario feeds the same events (old-form ones first, as left by a version before
 * partitions, then partitioned ones as the writer publishes them) to 1, 2 or 3 evaluator
 * processes (real subprocesses: test/helpers/evaluator-process.ts) over one real nats-server and
 * PostgreSQL, and compares the alerts and outbox rows with what one evaluator makes of them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AckPolicy } from "@nats-io/jetstream";
import {
  encodeCommitted,
  committedMessageId,
  committedSubject,
  type CommittedBatch,
} from "../../src/core/committed.ts";
import { uuidv5 } from "../../src/core/event-id.ts";
import { partitionNames, partitionSubject, splitByPartition } from "../../src/core/partition.ts";
import { createSql, type Sql } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { claimPartition, FencedError } from "../../src/evaluator/fence.ts";
import { newOutcome } from "../../src/evaluator/plan.ts";
import { commitOutcome } from "../../src/evaluator/store.ts";
import { connectBroker, type Broker } from "../../src/nats/connection.ts";
import { evaluatorBacklog } from "../../src/nats/evaluator-backlog.ts";
import { KvBucket } from "../../src/nats/kv.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";

const STREAM = "TELEMETRY_COMMITTED";
const TENANT = "acme";
const DEVICES = 24;
const LEGACY_STEPS = 6;
const STEPS = 60;
const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const LEASE_MS = 1_500;
const RULE_ID = "6f1c2b9e-6a55-4c3e-9b1f-0d5e2f7a4c11";
const NAMES = partitionNames(16);

/** High for 2 minutes in every 6 (phase by device; device 0 stuck high): with a 10-minute cooldown half the rises alert. */
function value(device: number, step: number): number {
  return device === 0 || (step + device) % 6 < 2 ? 60 : 40;
}

function batchAt(step: number): CommittedBatch {
  const ts = T0 + step * MIN;
  const devices = Array.from({ length: DEVICES }, (_, d) => `dev-${d}`);
  return {
    tenant: TENANT,
    series: devices.map((id, d) => ({
      deviceId: id,
      metric: "temp",
      ts,
      value: value(d, step),
      eventId: uuidv5(`${id}|${step}`),
      receivedAt: ts,
    })),
    positions: [],
    devices: devices.map((id) => ({ deviceId: id, lastTs: ts, receivedAt: ts })),
  };
}

/** As a version before partitions published it: the whole tenant's batch on telemetry.committed.v1.<tenant>. */
async function publishLegacy(broker: Broker, step: number): Promise<void> {
  const b = batchAt(step);
  await broker.js.publish(committedSubject(TENANT), encodeCommitted(b), { msgID: committedMessageId(b) });
}

/** As the writer publishes it now: one event per partition. */
async function publishPartitioned(broker: Broker, step: number): Promise<void> {
  for (const { partition, batch } of splitByPartition(batchAt(step), 16))
    await broker.js.publish(partitionSubject(TENANT, partition), encodeCommitted(batch), {
      msgID: committedMessageId(batch),
    });
}

interface Proc {
  proc: Bun.Subprocess<"ignore", "pipe", "inherit">;
  holder: string;
}

async function spawnEvaluator(natsUrl: string, databaseUrl: string): Promise<Proc> {
  const proc = Bun.spawn(
    [process.execPath, "test/helpers/evaluator-process.ts", natsUrl, databaseUrl, String(LEASE_MS)],
    {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "inherit",
    },
  );
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 20_000;
  while (!/READY (\S+)/.test(text)) {
    if (Date.now() > deadline) throw new Error(`evaluator process not ready: ${text.slice(-500)}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`evaluator process exited: ${text.slice(-500)}`);
    text += new TextDecoder().decode(value);
  }
  // Keep draining its log so it never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read().catch(() => ({ done: true }))).done);
  })();
  return { proc, holder: /READY (\S+)/.exec(text)![1]! };
}

/** Live lease holders by partition. */
async function holders(kv: KvBucket): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of NAMES) {
    const e = await kv.get(`p.${name}`);
    const v = e.value ? (JSON.parse(e.value) as { holder: string; expiresAt: number }) : null;
    if (v && v.expiresAt > Date.now()) out.set(name, v.holder);
  }
  return out;
}

async function drained(broker: Broker): Promise<boolean> {
  const b = await evaluatorBacklog(broker.jsm, STREAM);
  return b.num_pending === 0 && b.num_ack_pending === 0;
}

interface Result {
  alerts: string[];
  outbox: Record<string, number>;
  handoverMs?: number;
  balance?: number[];
}

type Disruption = "none" | "kill" | "pause";

/** Feeds every event to `n` evaluator processes; with a disruption, does it to the first one halfway. */
async function scenario(n: number, disruption: Disruption = "none"): Promise<Result> {
  await using nats = await startNats();
  const databaseUrl = await freshDatabase("evpart");
  const sql = createSql(databaseUrl, { max: 2, name: "test" });
  const broker = await connectBroker(nats.url, { name: "evaluator-partitions-test" });
  const procs: Proc[] = [];
  try {
    await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });
    await sql`INSERT INTO rules (id, tenant, name, severity, metric, condition, cooldown_seconds)
              VALUES (${RULE_ID}, ${TENANT}, 'hot', 'warning', 'temp',
                      ${sql.json({ type: "above_threshold", threshold: 50, clear: 45 })}, 600)`;
    await broker.jsm.streams.add({ name: STREAM, subjects: ["telemetry.committed.v1.>"], duplicate_window: 120e9 });
    // The old evaluator's durable (no filter), with the old-form events it had not read yet.
    await broker.jsm.consumers.add(STREAM, { durable_name: "evaluator", ack_policy: AckPolicy.Explicit });
    for (let s = 0; s < LEGACY_STEPS; s++) await publishLegacy(broker, s);

    for (let i = 0; i < n; i++) procs.push(await spawnEvaluator(nats.url, databaseUrl));
    const kv = await KvBucket.open(broker.js, broker.jsm, `${STREAM}_EVALUATORS`);
    let balance: number[] | undefined;
    if (n > 1) {
      // Rebalanced: each process holds ceil or floor of 17 / n partitions.
      balance = await check(
        async () => {
          const h = await holders(kv);
          const counts = procs.map((p) => [...h.values()].filter((x) => x === p.holder).length);
          const fair = h.size === NAMES.length && counts.every((c) => Math.abs(c - NAMES.length / n) < 1);
          return fair && counts;
        },
        { what: "the partitions spread over the evaluators", timeoutMs: 15_000 },
      );
    }
    await check(() => drained(broker), { what: "the old-form events evaluated", timeoutMs: 30_000 });

    let handoverMs: number | undefined;
    let disruptedAt = 0;
    for (let s = LEGACY_STEPS; s < STEPS; s++) {
      if (s === Math.floor((LEGACY_STEPS + STEPS) / 2) && disruption !== "none") {
        disruptedAt = Date.now();
        procs[0]!.proc.kill(disruption === "kill" ? "SIGKILL" : "SIGSTOP");
      }
      await publishPartitioned(broker, s);
    }
    if (disruption !== "none") {
      const others = new Set(procs.slice(1).map((p) => p.holder));
      await check(async () => [...(await holders(kv)).values()].filter((h) => others.has(h)).length === NAMES.length, {
        what: "the first evaluator's partitions taken over",
        timeoutMs: 20_000,
        intervalMs: 20,
      });
      handoverMs = Date.now() - disruptedAt;
      // A paused holder wakes up with events in hand and state loaded before its leases ended.
      if (disruption === "pause") procs[0]!.proc.kill("SIGCONT");
    }
    await check(() => drained(broker), { what: "every event evaluated", timeoutMs: 60_000 });
    if (disruption === "pause") await Bun.sleep(LEASE_MS * 2); // the woken one's late writes (refused) and its leases' end

    // Nothing quarantined: every event evaluated.
    expect((await sql`SELECT count(*)::int AS n FROM quarantine`)[0]!.n).toBe(0);
    const alerts =
      await sql`SELECT device_id, triggered_at, status, value FROM alerts ORDER BY device_id, triggered_at`;
    const outbox = await sql`SELECT event, count(*)::int AS n FROM outbox GROUP BY event ORDER BY event`;
    return {
      alerts: alerts.map((a) => `${a.device_id}@${(a.triggered_at as Date).toISOString()}:${a.status}:${a.value}`),
      outbox: Object.fromEntries(outbox.map((r) => [r.event as string, r.n as number])),
      handoverMs,
      balance,
    };
  } finally {
    for (const p of procs) p.proc.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.proc.exited));
    await broker.close();
    await sql.end();
  }
}

let baseline: Result;

beforeAll(async () => {
  baseline = await scenario(1);
}, 120_000);

describe("several evaluator processes", () => {
  test("one evaluator: every old-form and partitioned event evaluated, cooldowns suppress rises", () => {
    const rises = Array.from({ length: STEPS }, (_, s) => s).reduce(
      (n, s) => n + Array.from({ length: DEVICES }, (_, d) => d).filter((d) => d > 0 && (s + d) % 6 === 0).length,
      0,
    );
    const alerts = baseline.alerts.length;
    // Device 0 (stuck high) alerts once per 10 minutes; the others on every other rise (cooldown).
    expect(baseline.alerts.filter((a) => a.startsWith("dev-0@"))).toHaveLength(STEPS / 10);
    expect(alerts).toBeGreaterThan(rises / 3);
    expect(alerts).toBeLessThan(rises);
    // One NATS outbox row per opened alert and per resolution.
    expect(baseline.outbox["alert.opened"]).toBe(alerts);
    expect(baseline.outbox["alert.resolved"]).toBe(baseline.alerts.filter((a) => a.includes(":resolved:")).length);
  });

  test("two and three evaluators make exactly the alerts one makes", async () => {
    for (const n of [2, 3]) {
      const r = await scenario(n);
      expect(r.alerts).toEqual(baseline.alerts);
      expect(r.outbox).toEqual(baseline.outbox);
      expect(r.balance!.reduce((a, b) => a + b, 0)).toBe(NAMES.length);
    }
  }, 180_000);

  test("one of three killed (SIGKILL) mid-stream: its partitions move within the lease, same alerts", async () => {
    const r = await scenario(3, "kill");
    expect(r.alerts).toEqual(baseline.alerts);
    expect(r.outbox).toEqual(baseline.outbox);
    // Lease TTL, one round to notice, one to take: well under twice the lease plus slack.
    expect(r.handoverMs!).toBeLessThan(LEASE_MS * 2 + 2_000);
  }, 120_000);

  test("one of two paused (SIGSTOP) past its leases, then woken: same alerts", async () => {
    const r = await scenario(2, "pause");
    expect(r.alerts).toEqual(baseline.alerts);
    expect(r.outbox).toEqual(baseline.outbox);
  }, 120_000);
});

describe("the PostgreSQL fence", () => {
  let sql: Sql;
  beforeAll(async () => {
    sql = createSql(await freshDatabase("fence"), { max: 2, name: "test" });
    await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });
  });
  afterAll(() => sql.end());

  test("a holder whose partition was claimed again writes nothing; an event already written is not written again", async () => {
    const rule = {
      id: RULE_ID,
      tenant: TENANT,
      name: "hot",
      enabled: true,
      severity: "warning",
      metric: "temp",
      condition: { type: "above_threshold", threshold: 50 },
      for_seconds: 0,
      cooldown_seconds: 600,
    } as const;
    await sql`INSERT INTO rules (id, tenant, name, severity, metric, condition) VALUES (${RULE_ID}, ${TENANT}, 'hot', 'warning', 'temp', ${sql.json(rule.condition)})`;
    const outcome = (at: number) => {
      const o = newOutcome();
      const state = {
        active: true,
        activeSince: at,
        lastAlertAt: at,
        lastValue: 60,
        lastTs: at,
        inside: null,
        lastArrival: at,
      };
      o.states.set("k", { rule: rule as never, deviceId: "d1", state });
      o.open.push({
        id: crypto.randomUUID(),
        rule: rule as never,
        deviceId: "d1",
        triggeredAt: at,
        eventId: uuidv5(`e${at}`),
        fire: { value: 60, message: "hot", details: {} } as never,
      });
      return o;
    };
    const a = await claimPartition(sql, "S/evaluator_3", "a");
    const b = await claimPartition(sql, "S/evaluator_3", "b");
    expect(b.epoch).toBe(a.epoch + 1);
    // The old holder (a) is refused, even for a newer event.
    await expect(
      commitOutcome(sql, TENANT, outcome(T0), { name: "S/evaluator_3", epoch: a.epoch, seq: 10 }),
    ).rejects.toThrow(FencedError);
    expect((await sql`SELECT count(*)::int AS n FROM alerts`)[0]!.n).toBe(0);
    expect((await sql`SELECT count(*)::int AS n FROM rule_state`)[0]!.n).toBe(0);
    // The holder writes event 10 once; 10 again (a redelivery) and 9 change nothing.
    expect(await commitOutcome(sql, TENANT, outcome(T0), { name: "S/evaluator_3", epoch: b.epoch, seq: 10 })).toEqual({
      opened: 1,
      resolved: 0,
    });
    for (const seq of [10, 9])
      expect(
        await commitOutcome(sql, TENANT, outcome(T0 + seq), { name: "S/evaluator_3", epoch: b.epoch, seq }),
      ).toEqual({ opened: 0, resolved: 0 });
    expect((await sql`SELECT count(*)::int AS n FROM alerts`)[0]!.n).toBe(1);
    expect((await sql`SELECT last_seq FROM evaluator_partitions WHERE name = 'S/evaluator_3'`)[0]!.last_seq).toBe("10");
  });
});
