/** Ingest role: POST /api/v1/telemetry. */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { planMessages } from "../core/plan.ts";
import { normalizeRecord, type FieldError, type Reading } from "../core/record.ts";
import { requireTenant, type KeyResolver, type TenantEnv } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";
import { logger } from "../lib/log.ts";
import type { Broker } from "../nats/connection.ts";
import { bodyKind, parseBody } from "./parse.ts";
import { metrics } from "../lib/metrics.ts";
import { BrokerUnavailable, publishAll, type PublishOutcome } from "./publish.ts";

const log = logger("ingest");

export interface IngestOptions {
  stream: string;
  dlqStream: string;
  maxBodyBytes: number;
  maxRecordsPerRequest: number;
  recordsPerMessage: number;
  maxFutureMs: number;
  publishTimeoutMs: number;
  /** Clock, injectable for tests. */
  now?: () => number;
}

export type RecordResult =
  | { index: number; status: "accepted" | "duplicate"; event_id: string }
  | { index: number; status: "dead_lettered"; event_id: string; error: string }
  | { index: number; status: "rejected"; errors: FieldError[] };

/** Low-cardinality reason for the rejected-records metric: the top-level field at fault. */
const reasonOf = (errors: FieldError[]) => (errors[0]?.path.split(".")[0] || "record").replace(/[^a-z_]/g, "") || "record";

const MAX_MESSAGE_BYTES = 256 * 1024;

export function ingestRoutes(broker: Broker, keys: KeyResolver, opts: IngestOptions) {
  const now = opts.now ?? Date.now;
  const app = new Hono<TenantEnv>();
  app.post(
    "/api/v1/telemetry",
    requireTenant(keys),
    bodyLimit({
      maxSize: opts.maxBodyBytes,
      onError: () => {
        throw new HttpError(413, "body_too_large", `request body is larger than ${opts.maxBodyBytes} bytes`);
      },
    }),
    async function ingestTelemetry(c) {
      const tenant = c.get("tenant");
      const kind = bodyKind(c.req.header("content-type"));
      const items = parseBody(await c.req.text(), kind, opts.maxRecordsPerRequest);
      const receivedAt = now();

      const results: RecordResult[] = new Array(items.length);
      const valid: Array<{ index: number; reading: Reading }> = [];
      for (const item of items) {
        if ("error" in item) {
          results[item.index] = { index: item.index, status: "rejected", errors: [item.error] };
          continue;
        }
        const r = normalizeRecord(item.value, { tenant, nowMs: receivedAt, maxFutureMs: opts.maxFutureMs });
        if (r.ok) valid.push({ index: item.index, reading: r.reading });
        else results[item.index] = { index: item.index, status: "rejected", errors: r.errors };
      }
      const rejected = items.length - valid.length;
      for (const r of results) if (r?.status === "rejected") metrics.records.inc({ outcome: "rejected", reason: reasonOf(r.errors) }, 1);
      if (valid.length === 0) {
        return c.json({ accepted: 0, duplicate: 0, dead_lettered: 0, rejected, results }, 422);
      }

      const plan = planMessages(valid, { maxRecords: opts.recordsPerMessage, maxBytes: MAX_MESSAGE_BYTES, receivedAt });
      let outcomes: PublishOutcome[];
      try {
        outcomes = await publishAll(broker, plan.messages, { stream: opts.stream, dlqStream: opts.dlqStream, timeoutMs: opts.publishTimeoutMs });
      } catch (err) {
        if (!(err instanceof BrokerUnavailable)) throw err;
        metrics.records.inc({ outcome: "unavailable", reason: "" }, valid.length);
        log.warn({ err: err.message, records: valid.length }, "publish failed; answering 503");
        throw new HttpError(503, "broker_unavailable", "the message broker is unavailable; nothing from this request may be assumed stored, retry the same records later", undefined, { "Retry-After": "1" });
      }

      const byIndex = new Map(valid.map((v) => [v.index, v.reading.eventId]));
      plan.messages.forEach((m, i) => {
        const o = outcomes[i]!;
        for (const index of m.indexes) {
          const event_id = byIndex.get(index)!;
          results[index] = o.status === "dead_lettered" ? { index, status: "dead_lettered", event_id, error: o.error } : { index, status: o.duplicate ? "duplicate" : "accepted", event_id };
        }
      });
      for (const index of plan.duplicates) results[index] = { index, status: "duplicate", event_id: byIndex.get(index)! };

      const counts = { accepted: 0, duplicate: 0, dead_lettered: 0 };
      for (const r of results) if (r.status !== "rejected") counts[r.status]++;
      for (const [outcome, n] of Object.entries(counts)) if (n > 0) metrics.records.inc({ outcome, reason: "" }, n);
      return c.json({ ...counts, rejected, results }, 202);
    },
  );
  return app;
}
