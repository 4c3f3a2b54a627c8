/**
 * Replay: reads the telemetry stream from a point with an EPHEMERAL ordered consumer (the durable
 * consumers and their positions are untouched) and re-applies the events through the live code
 * paths: the writer's sink (rows are idempotent on the event id) and the evaluator's
 * evaluateBatch (alerts are idempotent on their id, so no duplicate alert and no duplicate
 * notification). A dry run reports what would change without changing anything.
 */
import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { summarizeCommitted } from "../core/committed.ts";
import { decodeEnvelope, type Envelope } from "../core/envelope.ts";
import { assetHash, SUBJECT_PREFIX } from "../core/subject.ts";
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import { evaluateBatch } from "../evaluator/evaluate.ts";
import { RulesCache } from "../evaluator/rules-cache.ts";
import { sleep } from "../lib/backoff.ts";
import type { Broker } from "../nats/connection.ts";
import { writeBatch } from "../writer/sink.ts";
import { describePoint, type Point } from "./range.ts";

export type Target = "writer" | "evaluator";

export interface ReplayOptions {
  stream: string;
  from: Point;
  to?: Point;
  tenant?: string;
  device?: string;
  targets: ReadonlySet<Target>;
  dryRun: boolean;
  /** Readings per second, at most. */
  rate?: number;
  batchSize: number;
  /** How the writer target inserts: COPY first (default), or straight to the upsert (most rows expected present). */
  prefer?: "copy" | "upsert";
  onProgress?: (p: ReplayProgress) => void;
  /** The evaluator target's default lateness bound (TELEMETRY_ALERT_MAX_LATENESS), judged on each message's receive time. */
  maxLatenessMs?: number;
  /** Told when the replay starts elsewhere than asked (a relative --from before the stream's first message). */
  onNotice?: (message: string) => void;
}

export interface ReplayProgress {
  messages: number;
  totalMessages: number;
  readings: number;
  startedAt: number;
}

export interface ReplaySummary {
  messages: number;
  readings: number;
  inserted: number;
  present: number;
  alertsCreated: number;
  errors: number;
  firstSeq: number | null;
  lastSeq: number | null;
  dryRun: boolean;
}

export class ReplayError extends Error {
  override readonly name = "ReplayError";
}

function filterSubject(o: ReplayOptions): string {
  if (o.device && !o.tenant) throw new ReplayError("--device needs --tenant");
  if (o.tenant && o.device) return `${SUBJECT_PREFIX}.${o.tenant}.${assetHash(o.device)}`;
  return o.tenant ? `${SUBJECT_PREFIX}.${o.tenant}.*` : `${SUBJECT_PREFIX}.>`;
}

/**
 * Checks the range against what the stream holds; returns where to start and the sequence to stop
 * after. A relative start ("10m") reaching before the first message means "everything of the last
 * 10 minutes that is still there": it starts at the first message, with a notice. An explicit
 * sequence or time the stream no longer holds is an error: those messages are gone.
 */
async function bounds(broker: Broker, o: ReplayOptions): Promise<{ endSeq: number; from: Point }> {
  const { state } = await broker.jsm.streams.info(o.stream);
  if (state.messages === 0) throw new ReplayError(`stream ${o.stream} is empty`);
  const firstTime = Date.parse(state.first_ts);
  const tooEarly = "seq" in o.from ? o.from.seq < state.first_seq : o.from.time < firstTime;
  const endSeq = o.to && "seq" in o.to ? Math.min(o.to.seq, state.last_seq) : state.last_seq;
  if (!tooEarly) return { endSeq, from: o.from };
  const available = `the stream's first message is sequence ${state.first_seq}, ${state.first_ts}; it keeps TELEMETRY_STREAM_MAX_AGE of data`;
  if ("time" in o.from && o.from.ago) {
    o.onNotice?.(
      `--from ${o.from.ago} asked for ${describePoint(o.from)}, but ${available}: replaying from sequence ${state.first_seq}`,
    );
    return { endSeq, from: { seq: state.first_seq } };
  }
  throw new ReplayError(`--from ${describePoint(o.from)} is before the stream's first message (${available})`);
}

export async function runReplay(deps: { broker: Broker; sql: Sql }, o: ReplayOptions): Promise<ReplaySummary> {
  const { broker, sql } = deps;
  if (o.tenant) {
    const [known] = await sql`SELECT 1 FROM tenants WHERE id = ${o.tenant}`;
    if (!known) throw new ReplayError(`unknown tenant ${JSON.stringify(o.tenant)} (see telemetry tenants list)`);
  }
  const { endSeq, from } = await bounds(broker, o);
  const consumer = await broker.js.consumers.get(o.stream, {
    filter_subjects: filterSubject(o),
    ...("seq" in from
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from.seq }
      : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(from.time).toISOString() }),
  });
  const endTime = o.to && "time" in o.to ? o.to.time : Infinity;
  const rules = new RulesCache(sql, 60_000);
  const summary: ReplaySummary = {
    messages: 0,
    readings: 0,
    inserted: 0,
    present: 0,
    alertsCreated: 0,
    errors: 0,
    firstSeq: null,
    lastSeq: null,
    dryRun: o.dryRun,
  };
  const progress: ReplayProgress = { messages: 0, totalMessages: 0, readings: 0, startedAt: Date.now() };
  let pending: Envelope[] = [];
  let pendingReadings = 0;

  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    pendingReadings = 0;
    try {
      if (o.targets.has("writer")) await applyWriter(sql, batch, o.dryRun, summary, o.prefer);
      if (o.targets.has("evaluator")) {
        for (const b of summarizeCommitted(batch)) {
          summary.alertsCreated += (
            await evaluateBatch(sql, await rules.forTenant(b.tenant), b, {
              dryRun: o.dryRun,
              maxLatenessMs: o.maxLatenessMs,
            })
          ).opened;
        }
      }
    } catch (err) {
      summary.errors++;
      process.stderr.write(`replay: a batch of ${batch.length} message(s) failed: ${errorText(err)}\n`);
    }
  };

  try {
    await readAll();
  } finally {
    // The ordered consumer would linger on the server for its 5-minute inactivity threshold.
    await consumer.delete().catch(() => false);
  }
  o.onProgress?.(progress);
  return summary;

  /**
   * Fetches in rounds (one pull request is bounded by its expiry, so a single huge fetch would end
   * a long replay early). Stops after the last message that was in the stream when the replay
   * started, when nothing matching is left (`pending` 0), or when a round brings nothing.
   */
  async function readAll(): Promise<void> {
    for (;;) {
      const round = await consumer.fetch({ max_messages: 1_000, expires: 2_000 });
      let got = 0;
      let end = false;
      for await (const msg of round as AsyncIterable<JsMsg>) {
        got++;
        if (!apply(msg)) {
          end = true;
          break;
        }
        if (pendingReadings >= o.batchSize) await flush();
        if (o.rate) await pace(progress, o.rate);
        o.onProgress?.(progress);
      }
      if (end || got === 0) break;
    }
    await flush();
  }

  /** Takes one message; false when the replay is over (this one included or not, see the checks). */
  function apply(msg: JsMsg): boolean {
    if (summary.firstSeq === null) {
      summary.firstSeq = msg.seq;
      progress.totalMessages = endSeq - msg.seq + 1;
    }
    if (msg.seq > endSeq || msg.info.timestampNanos / 1e6 > endTime) return false;
    summary.lastSeq = msg.seq;
    summary.messages++;
    progress.messages++;
    try {
      const env = decodeEnvelope(msg.string());
      const readings = o.device ? env.readings.filter((r) => r.deviceId === o.device) : env.readings;
      if (readings.length > 0) {
        pending.push({ ...env, readings });
        pendingReadings += readings.length;
        summary.readings += readings.length;
        progress.readings += readings.length;
      }
    } catch {
      summary.errors++; // undecodable: the live writer quarantined it
    }
    return msg.seq < endSeq && msg.info.pending > 0;
  }
}

async function applyWriter(
  sql: Sql,
  batch: Envelope[],
  dryRun: boolean,
  summary: ReplaySummary,
  prefer?: "copy" | "upsert",
): Promise<void> {
  if (!dryRun) {
    const r = await writeBatch(sql, batch, [], { prefer });
    summary.inserted += r.inserted;
    summary.present += r.readings - r.inserted;
    return;
  }
  const seen = new Map(batch.flatMap((e) => e.readings.map((r) => [r.eventId, r] as const)));
  const rs = [...seen.values()];
  // Joins on the whole primary key, so the lookup uses it.
  const [row] = await sql`
    SELECT count(*)::int AS n FROM readings r
    JOIN unnest(${rs.map((x) => x.tenant)}::text[], ${rs.map((x) => x.deviceId)}::text[],
                ${rs.map((x) => new Date(x.ts).toISOString())}::timestamptz[], ${rs.map((x) => x.eventId)}::uuid[]) AS u(tenant, device_id, ts, event_id)
      ON r.tenant = u.tenant AND r.device_id = u.device_id AND r.ts = u.ts AND r.event_id = u.event_id`;
  summary.present += row!.n;
  summary.inserted += rs.length - row!.n;
}

async function pace(p: ReplayProgress, rate: number): Promise<void> {
  const due = p.startedAt + (p.readings / rate) * 1000;
  const wait = due - Date.now();
  if (wait > 0) await sleep(wait);
}
