/** An alerts row (as postgres.js returns it) in the shape the outbox and notifications use. */
import type { OutboxAlert } from "../notify/outbox.ts";

export function alertFromRow(a: Record<string, any>): OutboxAlert {
  return {
    id: a.id,
    tenant: a.tenant,
    ruleId: a.rule_id,
    ruleName: a.rule_name,
    deviceId: a.device_id,
    metric: a.metric ?? null,
    severity: a.severity,
    kind: a.kind,
    status: a.status,
    value: a.value ?? null,
    message: a.message,
    details: a.details,
    triggeredAt: a.triggered_at,
    createdAt: a.created_at,
  };
}
