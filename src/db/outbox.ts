/**
 * The outbox side of notifications: rows written in the same transaction as the alert change, one
 * per destination (the alert event on NATS, and each enabled channel of the tenant). A row's id
 * is the delivery id receivers deduplicate on: UUIDv5 of the alert, the event and the destination,
 * so evaluating or replaying the same change again never enqueues it twice.
 */
import type { TransactionSql } from "postgres";
import { uuidv5 } from "../core/event-id.ts";
import type { AlertView } from "./alert-row.ts";

export type AlertEvent = "alert.opened" | "alert.acknowledged" | "alert.resolved";

/** What a receiver gets (the webhook body, the NATS message data). */
export interface AlertPayload {
  delivery_id: string;
  event: AlertEvent;
  alert: AlertView;
}

/**
 * Delay before attempt n, counted from the previous failure (attempt 0 is the first, at once);
 * after the last attempt fails the delivery is 'failed'.
 */
export const DEFAULT_SCHEDULE_MS: readonly number[] = [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000];

export function deliveryId(alertId: string, event: AlertEvent, channelId: string | null): string {
  return uuidv5(`delivery|${alertId}|${event}|${channelId ?? "nats"}`);
}

export function alertPayload(id: string, event: AlertEvent, alert: AlertView): AlertPayload {
  return { delivery_id: id, event, alert };
}

/** Inserts the alert change's outbox rows inside the caller's transaction; returns how many were new. */
export async function enqueueAlertNotifications(
  tx: TransactionSql,
  alert: AlertView,
  event: AlertEvent,
): Promise<number> {
  const channels = await tx`SELECT id, kind FROM channels WHERE tenant = ${alert.tenant} AND enabled ORDER BY id`;
  const destinations = [
    { channelId: null as string | null, kind: "nats" },
    ...channels.map((c) => ({ channelId: c.id as string, kind: c.kind as string })),
  ];
  const rows = destinations.map((d) => {
    const id = deliveryId(alert.id, event, d.channelId);
    return { ...d, id, payload: JSON.stringify(alertPayload(id, event, alert)) };
  });
  // Payloads travel as text[]: a jsonb[] parameter would make postgres.js JSON-encode the strings again.
  const inserted = await tx`
    INSERT INTO outbox (id, tenant, alert_id, channel_id, kind, event, payload)
    SELECT id, ${alert.tenant}, ${alert.id}, channel_id, kind, ${event}, payload
    FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.channelId)}::uuid[],
                ${rows.map((r) => r.kind)}::text[], ${rows.map((r) => r.payload)}::text[]::jsonb[]) AS u(id, channel_id, kind, payload)
    ON CONFLICT (id) DO NOTHING`;
  return inserted.count;
}
