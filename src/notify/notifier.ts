/**
 * Notifier: delivers outbox rows, at least once, with retries on a schedule.
 *
 * Rows are claimed with a lease (locked_until) under FOR UPDATE SKIP LOCKED, so several notifiers
 * share the work without taking the same row, and a notifier that dies mid-delivery loses nothing:
 * its rows come back when the lease expires. The lease value is also the claim's fencing token:
 * only the current holder reschedules a failed row, while a success is always recorded. The
 * lease must outlast a batch: batch / concurrency × timeout (defaults: 20 / 4 × 10 s < 60 s).
 * Receivers deduplicate by X-Telemetry-Delivery (NATS by Nats-Msg-Id in the stream's window).
 * Webhook and hub requests go only to addresses the target policy allows (http-post.ts), and what
 * is recorded for a failed one is a category (core/delivery-error.ts); the raw error is logged.
 */
import type { Sql } from "../db/client.ts";
import { errorText } from "../db/errors.ts";
import { backoffMs } from "../lib/backoff.ts";
import { logger } from "../lib/log.ts";
import type { Broker } from "../nats/connection.ts";
import { ensureStream } from "../nats/stream.ts";
import { ALERT_STREAM, alertStream, alertSubject } from "../nats/topology.ts";
import { DEFAULT_SCHEDULE_MS, type AlertPayload } from "../db/outbox.ts";
import type { SecretBox } from "./secrets.ts";
import { signatureHeaders } from "./signing.ts";
import { metrics } from "../lib/metrics.ts";
import { errorCategory, httpCategory } from "../core/delivery-error.ts";
import { STRICT_POLICY, type TargetPolicy } from "../core/target-policy.ts";
import { postJson } from "./http-post.ts";
import { retryUntil } from "../pipeline/retry.ts";
import { StopBudget } from "../pipeline/stop.ts";

const log = logger("notifier");

export interface NotifierDeps {
  sql: Sql;
  broker: Broker;
  secrets: SecretBox;
}

export interface NotifierOptions {
  scheduleMs?: readonly number[];
  pollMs?: number;
  batch?: number;
  leaseMs?: number;
  /** HTTP request and NATS publish timeout. */
  timeoutMs?: number;
  concurrency?: number;
  streamReplicas?: number;
  /** Which addresses webhook and hub deliveries may connect to (default: public unicast only). */
  targets?: TargetPolicy;
}

export interface NotifierStats {
  delivered: number;
  /** Failed attempts with another one scheduled. */
  retried: number;
  /** Deliveries given up (schedule exhausted, or channel disabled). */
  failed: number;
  /** Database errors of the notifier itself (polls, recording results). */
  errors: number;
  healthy: boolean;
}

export interface Notifier {
  readonly stats: NotifierStats;
  /** Polls now (call after committing outbox rows). */
  wake(): void;
  /** Finishes the deliveries under way (within timeoutMs), then returns. */
  stop(timeoutMs: number): Promise<void>;
}

interface Claimed {
  id: string;
  tenant: string;
  kind: "nats" | "webhook" | "hub";
  event: string;
  payload: AlertPayload;
  /** locked_until as text: compared exactly (a JS Date would drop the microseconds). */
  lease: string;
  url: string | null;
  secret: string | null;
  enabled: boolean | null;
}

interface Outcome {
  ok: boolean;
  statusCode: number | null;
  /** What the tenant sees: a category (delivery-error.ts) for HTTP, never socket text. */
  error: string | null;
  /** The raw error, for the server log only. */
  detail?: string;
  durationMs: number;
  /** No retry can help. */
  final?: boolean;
}

/** host + path only: a URL may carry credentials in its user info or query. */
export function safeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return "(unparseable URL)";
  }
}

export function startNotifier(deps: NotifierDeps, opts: NotifierOptions = {}): Notifier {
  const { sql, broker, secrets } = deps;
  const schedule = opts.scheduleMs ?? DEFAULT_SCHEDULE_MS;
  const pollMs = opts.pollMs ?? 1_000;
  const batch = opts.batch ?? 20;
  const leaseMs = opts.leaseMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const concurrency = opts.concurrency ?? 4;
  const targets = opts.targets ?? STRICT_POLICY;
  const stats: NotifierStats = { delivered: 0, retried: 0, failed: 0, errors: 0, healthy: true };
  const halt = new AbortController();
  const budget = new StopBudget();
  let woken = false;
  let wakeUp: (() => void) | null = null;
  let stream: Promise<void> | null = null;

  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || budget.stopping) {
        woken = false;
        return resolve();
      }
      const timer = setTimeout(done, ms);
      wakeUp = done;
      function done() {
        clearTimeout(timer);
        wakeUp = null;
        woken = false;
        resolve();
      }
    });

  const claim = async (): Promise<Claimed[]> => {
    const rows = await sql`
      WITH due AS (
        SELECT id FROM outbox
        WHERE status = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
        ORDER BY next_attempt_at
        LIMIT ${batch}
        FOR UPDATE SKIP LOCKED
      ), claimed AS (
        UPDATE outbox o SET locked_until = now() + ${leaseMs} * interval '1 millisecond'
        FROM due WHERE o.id = due.id
        RETURNING o.id, o.tenant, o.kind, o.event, o.payload, o.channel_id, o.locked_until::text AS lease
      )
      SELECT claimed.*, c.url, c.secret_encrypted AS secret, c.enabled
      FROM claimed LEFT JOIN channels c ON c.id = claimed.channel_id`;
    return rows as unknown as Claimed[];
  };

  const publish = async (row: Claimed) => {
    stream ??= ensureStream(broker.jsm, alertStream(opts.streamReplicas)).catch((err) => {
      stream = null;
      throw err;
    });
    await stream;
    await broker.js.publish(alertSubject(row.tenant), JSON.stringify(row.payload), {
      msgID: row.id,
      expect: { streamName: ALERT_STREAM },
      timeout: timeoutMs,
    });
  };

  const requestHeaders = (row: Claimed, body: string): Record<string, string> => {
    const headers = {
      "Content-Type": "application/json",
      "User-Agent": "telemetry-notifier",
      "X-Telemetry-Delivery": row.id,
      "X-Telemetry-Event": row.event,
    };
    const secret = row.secret === null ? null : secrets.decrypt(row.secret);
    if (row.kind === "hub") {
      if (secret === null) throw Object.assign(new Error("hub channel has no API key"), { code: "MISSING_SECRET" });
      return { ...headers, "X-API-Key": secret };
    }
    return secret === null ? headers : { ...headers, ...signatureHeaders(secret, body, Date.now() / 1000) };
  };

  const post = (row: Claimed): Promise<number> => {
    const body = JSON.stringify(row.payload);
    return postJson(row.url!, requestHeaders(row, body), body, { policy: targets, timeoutMs, signal: halt.signal });
  };

  const describe = (err: unknown, url: string | null): string => {
    if ((err as Error)?.name === "TimeoutError") return `timed out after ${timeoutMs} ms`;
    const message = (err as Error)?.message ?? String(err);
    const code = (err as { code?: unknown })?.code;
    const text = typeof code === "string" && !message.startsWith(code) ? `${code}: ${message}` : message; // Bun puts the code in the message
    return (url ? text.replaceAll(url, safeTarget(url)) : text).replaceAll("\u0000", "").slice(0, 500);
  };

  const deliver = async (row: Claimed): Promise<Outcome> => {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    if (row.kind !== "nats" && !row.enabled)
      return { ok: false, statusCode: null, error: "channel_disabled", durationMs: 0, final: true };
    try {
      let status: number | null = null;
      if (row.kind === "nats") await publish(row);
      else status = await post(row);
      const ok = status === null || (status >= 200 && status < 300);
      return { ok, statusCode: status, error: ok ? null : httpCategory(status!), durationMs: elapsed() };
    } catch (err) {
      const detail = describe(err, row.url);
      // NATS rows belong to no channel (tenants never see them): their text helps the operator.
      return {
        ok: false,
        statusCode: null,
        error: row.kind === "nats" ? detail : errorCategory(err as Error),
        detail,
        durationMs: elapsed(),
      };
    }
  };

  const record = (row: Claimed, o: Outcome) =>
    sql.begin(async (tx) => {
      const [current] =
        await tx`SELECT attempts, status, locked_until::text AS lease FROM outbox WHERE id = ${row.id} FOR UPDATE`;
      if (!current) return; // its alert or channel was deleted meanwhile
      const attempt = (current.attempts as number) + 1;
      await tx`
        INSERT INTO delivery_attempts (delivery_id, attempt, status_code, error, duration_ms)
        VALUES (${row.id}, ${attempt}, ${o.statusCode}, ${o.error}, ${o.durationMs})`;
      const target = row.url ? safeTarget(row.url) : alertSubject(row.tenant);
      if (o.ok) {
        await tx`
          UPDATE outbox SET status = 'delivered', attempts = ${attempt}, delivered_at = coalesce(delivered_at, now()), locked_until = NULL
          WHERE id = ${row.id}`;
        stats.delivered++;
        metrics.deliveries.inc({ result: "delivered" });
        log.debug({ delivery: row.id, kind: row.kind, target, attempt }, "delivered");
        return;
      }
      if (current.status !== "pending" || current.lease !== row.lease) {
        // Someone else holds the row now (our lease expired) or it is settled: just count the attempt.
        await tx`UPDATE outbox SET attempts = ${attempt} WHERE id = ${row.id}`;
        return;
      }
      const delay = o.final ? undefined : schedule[attempt];
      if (delay === undefined) {
        await tx`UPDATE outbox SET status = 'failed', attempts = ${attempt}, last_error = ${o.error}, locked_until = NULL WHERE id = ${row.id}`;
        stats.failed++;
        metrics.deliveries.inc({ result: "failed" });
        log.warn(
          { delivery: row.id, kind: row.kind, target, attempts: attempt, err: o.error, detail: o.detail },
          "delivery failed for good",
        );
      } else {
        await tx`
          UPDATE outbox SET attempts = ${attempt}, last_error = ${o.error}, locked_until = NULL,
                 next_attempt_at = now() + ${delay} * interval '1 millisecond'
          WHERE id = ${row.id}`;
        stats.retried++;
        metrics.deliveries.inc({ result: "retried" });
        log.info(
          { delivery: row.id, kind: row.kind, target, attempt, err: o.error, detail: o.detail, retryInMs: delay },
          "delivery failed; will retry",
        );
      }
    });

  /** Retries recording while the lease holds; after that the row is delivered again, which receivers dedupe. */
  const recordWithRetry = (row: Claimed, o: Outcome, leaseDeadline: number) =>
    retryUntil(() => record(row, o), {
      baseMs: 100,
      maxMs: 2_000,
      until: () => Math.min(leaseDeadline, budget.deadline),
      onError: (err, _attempt, wait) => {
        stats.errors++;
        if (wait === null)
          log.warn(
            { delivery: row.id, err: errorText(err) },
            "could not record a delivery result; the row is retried when its lease expires",
          );
      },
    });

  /** Hands back rows this notifier claimed but did not start (shutdown, or lease too short). */
  const release = async (rows: Claimed[]) => {
    if (rows.length === 0) return;
    await sql`
      UPDATE outbox SET locked_until = NULL
      FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.lease)}::timestamptz[]) AS r(id, lease)
      WHERE outbox.id = r.id AND outbox.locked_until = r.lease`.catch((err) =>
      log.warn({ err: errorText(err) }, "could not release claimed rows; their lease will expire"),
    );
  };

  const runOnce = async (): Promise<number> => {
    const leaseDeadline = Date.now() + leaseMs;
    const rows = await claim();
    const skipped: Claimed[] = [];
    let next = 0;
    const worker = async () => {
      while (next < rows.length) {
        const row = rows[next++]!;
        if (budget.stopping || Date.now() >= leaseDeadline) {
          skipped.push(row);
          continue;
        }
        const outcome = await deliver(row);
        if (halt.signal.aborted) return; // cut short by shutdown: not an attempt; the lease brings it back
        await recordWithRetry(row, outcome, leaseDeadline);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
    if (!halt.signal.aborted) await release(skipped);
    return rows.length;
  };

  const loop = async () => {
    for (let failures = 0; !budget.stopping; ) {
      try {
        const claimed = await runOnce();
        if (!stats.healthy) log.info("notifier recovered");
        stats.healthy = true;
        failures = 0;
        if (claimed < batch) await idle(pollMs); // a full batch means more may be due at once
      } catch (err) {
        stats.errors++;
        stats.healthy = false;
        const wait = backoffMs(failures++, 500, 30_000);
        log.warn({ err: errorText(err), retryInMs: wait }, "notifier poll failed; retrying");
        await idle(wait);
      }
    }
  };

  const done = loop();
  let stopped: Promise<void> | null = null;
  log.info({ batch, concurrency, leaseMs, schedule }, "notifier started");

  return {
    stats,
    wake() {
      woken = true;
      wakeUp?.();
    },
    stop(timeoutMs) {
      stopped ??= (async () => {
        budget.begin(timeoutMs);
        wakeUp?.();
        const deadline = setTimeout(() => halt.abort(), timeoutMs);
        const aborted = new Promise<void>((resolve) =>
          halt.signal.addEventListener("abort", () => resolve(), { once: true }),
        );
        await Promise.race([done, aborted]);
        clearTimeout(deadline);
        log.info({ ...stats }, "notifier stopped");
      })();
      return stopped;
    },
  };
}
