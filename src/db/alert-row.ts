/**
 * The one JSON view of an alert: what the API returns and what notifications carry, built from an
 * alerts row as postgres.js returns it (timestamps as Dates).
 */
export interface AlertView {
  id: string;
  tenant: string;
  rule_id: string;
  rule_name: string;
  device_id: string;
  metric: string | null;
  severity: string;
  kind: string;
  status: string;
  value: number | null;
  message: string;
  details: unknown;
  triggered_at: string;
  created_at: string;
  acknowledged_at: string | null;
  resolved_at: string | null;
  resolution: string | null;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function alertView(a: Record<string, any>): AlertView {
  return {
    id: a.id,
    tenant: a.tenant,
    rule_id: a.rule_id,
    rule_name: a.rule_name,
    device_id: a.device_id,
    metric: a.metric ?? null,
    severity: a.severity,
    kind: a.kind,
    status: a.status,
    value: a.value ?? null,
    message: a.message,
    details: a.details,
    triggered_at: (a.triggered_at as Date).toISOString(),
    created_at: (a.created_at as Date).toISOString(),
    acknowledged_at: iso(a.acknowledged_at),
    resolved_at: iso(a.resolved_at),
    resolution: a.resolution ?? null,
  };
}
