/**
 * GET /api/v1/stream: the tenant's readings as they are committed and its alert changes, as
 * Server-Sent Events (docs/stream.md, decision 0620). Read with fetch() and an Authorization
 * header (EventSource cannot send one); `Last-Event-ID` resumes after an event without a gap or
 * a repeat while the broker streams still hold what followed it.
 */
import type { Context } from "hono";
import { z } from "zod";
import { decodeEnvelope, type Envelope } from "../core/envelope.ts";
import { type Cursor, parseCursor, type StreamFilter } from "../core/live-stream.ts";
import { deviceIdProblem, METRIC_NAME_PATTERN } from "../core/record.ts";
import { SUBJECT_PREFIX, tenantFilter } from "../core/subject.ts";
import type { AlertPayload } from "../db/outbox.ts";
import type { TenantEnv } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";
import { ok, retryAfter, routesOf } from "../http/route.ts";
import { logger } from "../lib/log.ts";
import { scrapeGauge } from "../lib/metrics.ts";
import type { Broker } from "../nats/connection.ts";
import { ALERT_STREAM, alertSubject } from "../nats/topology.ts";
import { err } from "../openapi/views.ts";
import { CommitGate, Feed } from "./stream-feed.ts";
import { Session } from "./stream-session.ts";

const log = logger("stream");

export interface LiveStreamOptions {
  stream: string;
  writerDurable: string;
  maxSubscribers: number;
  maxPerTenant: number;
  heartbeatMs: number;
  /** How often the writer's ack floor is asked while a message waits for it. */
  commitPollMs?: number;
  /** Bytes queued for one client before it is cut off (default 1 MiB). */
  maxQueuedBytes?: number;
}

const MAX_FILTER_ITEMS = 100;

export class LiveStream {
  readonly readings: Feed<Envelope>;
  readonly alerts: Feed<AlertPayload>;
  private readonly sessions = new Set<Session>();
  private readonly perTenant = new Map<string, number>();
  private readonly heartbeat: ReturnType<typeof setInterval>;

  constructor(
    broker: Broker,
    readonly opts: LiveStreamOptions,
  ) {
    const gate = new CommitGate(broker, opts.stream, opts.writerDurable, opts.commitPollMs ?? 100);
    const tenantAt = (i: number) => (subject: string) => subject.split(".")[i] ?? null;
    this.readings = new Feed(broker, {
      stream: opts.stream,
      tenantSubjects: tenantFilter,
      tenantOf: tenantAt(SUBJECT_PREFIX.split(".").length),
      decode: (msg) => {
        try {
          return decodeEnvelope(msg.string());
        } catch {
          return null; // quarantined by the writer, not a reading
        }
      },
      gate: (seq, stopped) => gate.reach(seq, stopped),
      // From the first message not yet committed: what the writer commits after a session opened is shown to it.
      startAfter: async (last) => (await gate.current()) ?? last,
    });
    this.alerts = new Feed(broker, {
      stream: ALERT_STREAM,
      tenantSubjects: alertSubject,
      tenantOf: tenantAt(2),
      decode: (msg) => {
        try {
          return msg.json<AlertPayload>();
        } catch {
          return null;
        }
      },
    });
    scrapeGauge("telemetry_live_streams", "Live streams (GET /api/v1/stream) this process serves", [], async (set) =>
      set({}, this.sessions.size),
    );
    this.heartbeat = setInterval(() => {
      for (const s of this.sessions) s.write(": keep-alive\n\n");
    }, opts.heartbeatMs);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Counts the session in, or refuses it with the bound it would cross. */
  open(tenant: string, filter: StreamFilter, cursor: Cursor): Session {
    const n = this.perTenant.get(tenant) ?? 0;
    if (n >= this.opts.maxPerTenant)
      throw new HttpError(
        429,
        "too_many_streams",
        `tenant ${tenant} already has ${n} live streams open on this server (TELEMETRY_LIVE_MAX_PER_TENANT)`,
        undefined,
        { "Retry-After": "30" },
      );
    if (this.sessions.size >= this.opts.maxSubscribers)
      throw new HttpError(
        503,
        "stream_capacity",
        `this server already serves ${this.sessions.size} live streams (TELEMETRY_LIVE_MAX_SUBSCRIBERS)`,
        undefined,
        { "Retry-After": "30" },
      );
    const session = new Session(tenant, filter, cursor, this.opts.maxQueuedBytes ?? 1 << 20, (s) => {
      this.sessions.delete(s);
      const left = (this.perTenant.get(s.tenant) ?? 1) - 1;
      if (left > 0) this.perTenant.set(s.tenant, left);
      else this.perTenant.delete(s.tenant);
    });
    this.sessions.add(session);
    this.perTenant.set(tenant, n + 1);
    return session;
  }

  /** Ends every session (they resume elsewhere by id) and the fan-outs. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const s of [...this.sessions]) s.close();
    await Promise.all([this.readings.close(), this.alerts.close()]);
  }
}

export interface StreamDeps {
  live: LiveStream | null;
}

const listParam = (what: string) =>
  z
    .string()
    .optional()
    .meta({ description: `${what}; repeat the parameter or separate with commas` });

export const streamQuery = z.object({
  device: listParam("only these devices"),
  metric: listParam("only readings with one of these metrics (and only those metrics); alerts of these metrics"),
});

/** Repeated and comma-separated values, checked; null when absent. */
function listOf(c: Context, name: string, problem: (v: string) => string | null): Set<string> | null {
  const values = (c.req.queries(name) ?? []).flatMap((v) => v.split(",")).filter((v) => v !== "");
  if (values.length === 0) return null;
  if (values.length > MAX_FILTER_ITEMS)
    throw new HttpError(400, "invalid_query", `at most ${MAX_FILTER_ITEMS} values of ${name}`);
  for (const v of values) {
    const p = problem(v);
    if (p) throw new HttpError(400, "invalid_query", `${name} ${JSON.stringify(v.slice(0, 200))} ${p}`);
  }
  return new Set(values);
}

const metricProblem = (m: string) => (METRIC_NAME_PATTERN.test(m) ? null : "is not a metric name");

function lastEventId(c: Context): Cursor | null {
  const header = c.req.header("last-event-id");
  if (header === undefined || header.trim() === "") return null;
  const cursor = parseCursor(header);
  if (!cursor)
    throw new HttpError(
      400,
      "invalid_last_event_id",
      "Last-Event-ID is not an id of this stream (expected <seq>[.<index>]-<seq>, as sent in the events' id field)",
    );
  return cursor;
}

const route = routesOf<StreamDeps>();

export const streamRoutes = [
  route({
    method: "get",
    path: "/api/v1/stream",
    tag: "stream",
    summary: "Live readings (as committed) and alert changes, as Server-Sent Events",
    description:
      "Events `reading` and `alert`, each with an id; send the last one as `Last-Event-ID` to resume. `reset` says the position could not be resumed (older than the broker keeps). Comment lines keep the connection alive. See docs/stream.md.",
    auth: "tenant",
    query: streamQuery,
    responses: {
      200: { description: "the event stream", contentType: "text/event-stream" },
      400: err("bad filter or Last-Event-ID"),
      429: { ...err("too many live streams of this tenant on this server"), headers: retryAfter },
      503: {
        ...err("this server serves as many live streams as it may (stream_capacity), or cannot read the broker now"),
        headers: retryAfter,
      },
    },
    handler: async function liveStream(c: Context<TenantEnv>, { live }) {
      if (!live) throw new HttpError(503, "stream_unavailable", "this server does not serve the live stream");
      const tenant = c.get("tenant");
      const filter = {
        devices: listOf(c, "device", deviceIdProblem),
        metrics: listOf(c, "metric", metricProblem),
      };
      const resume = lastEventId(c);
      try {
        await Promise.all([live.readings.ensureRunning(), live.alerts.ensureRunning()]);
      } catch (e) {
        log.warn({ err: (e as Error).message }, "live stream feeds could not start");
        throw new HttpError(503, "stream_unavailable", "the broker cannot be read right now; retry later", undefined, {
          "Retry-After": "5",
        });
      }
      const start: Cursor = resume ?? {
        seq: live.readings.lastDispatched,
        index: null,
        alertSeq: live.alerts.lastDispatched,
      };
      const session = live.open(tenant, filter, start);
      // SSE stays open for as long as the client reads: no idle timeout for this request.
      (c.env as { timeout?: (r: Request, s: number) => void } | undefined)?.timeout?.(c.req.raw, 0);
      c.req.raw.signal?.addEventListener("abort", () => session.close());
      session.write(`retry: 2000\n\n`);
      void connect(live, session, resume !== null).catch((e) => {
        log.warn({ err: (e as Error).message }, "live stream could not start; closing it");
        session.close();
      });
      return new Response(session.body, {
        headers: {
          "Content-Type": "text/event-stream; charset=utf-8",
          "Cache-Control": "no-cache, no-store",
          "X-Accel-Buffering": "no",
        },
      });
    },
  }),
];

/** Checks a resumed position against what the streams keep, then joins both feeds. */
async function connect(live: LiveStream, s: Session, resumed: boolean): Promise<void> {
  if (resumed) {
    const [t, a] = await Promise.all([live.readings.bounds(), live.alerts.bounds()]);
    const next = s.cursor.index === null ? s.cursor.seq + 1 : s.cursor.seq;
    const readingsGone = next < t.first || s.cursor.seq > t.last;
    const alertsGone = s.cursor.alertSeq + 1 < a.first || s.cursor.alertSeq > a.last;
    if (readingsGone || alertsGone) {
      // Older than the retention (or from streams since recreated): on from the oldest kept.
      const reason = next < t.first || s.cursor.alertSeq + 1 < a.first ? "expired" : "unknown";
      s.cursor = {
        seq: readingsGone ? Math.max(0, t.first - 1) : s.cursor.seq,
        index: readingsGone ? null : s.cursor.index,
        alertSeq: alertsGone ? Math.max(0, a.first - 1) : s.cursor.alertSeq,
      };
      s.event("reset", { reason, message: RESET_MESSAGE[reason] });
    }
  }
  s.event("open", { id: s.id });
  await Promise.all([
    s.join(live.readings, () => (s.cursor.index === null ? s.cursor.seq + 1 : s.cursor.seq), s.emitReadings),
    s.join(live.alerts, () => s.cursor.alertSeq + 1, s.emitAlert),
  ]);
}

const RESET_MESSAGE: Record<string, string> = {
  expired: "Last-Event-ID is older than the broker keeps; resuming from the oldest event kept, some were missed",
  unknown: "Last-Event-ID is ahead of the broker's streams (they were recreated); resuming from the oldest event kept",
};
