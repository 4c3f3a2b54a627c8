/**
 * MQTT ingest, pure part. Devices publish to the MQTT topic `tenant/{tenant}/device/{device}/telemetry`;
 * nats-server's MQTT listener maps it to the NATS subject `tenant.{tenant}.device.{device}.telemetry`,
 * and its user permissions make sure a key only publishes under its own tenant. The payload is
 * one record or a JSON array of records, as on HTTP; `device_id` may be left out (the topic names
 * the device) and, when present, must be the topic's device.
 */
import { DEVICE_ID_PATTERN, normalizeRecord, type FieldError, type Reading } from "./record.ts";
import { TENANT_ID_PATTERN } from "./subject.ts";

export const MQTT_SUBJECT_FILTER = "tenant.*.device.*.telemetry";
/** Most records in one MQTT message. */
export const MQTT_MAX_RECORDS = 1_000;

/** What a key may publish to: its tenant's device topics, or only its device's topic (a device key). */
export function mqttPublishSubject(tenant: string, device: string | null = null): string {
  return `tenant.${tenant}.device.${device ?? "*"}.telemetry`;
}

export function parseMqttSubject(subject: string): { tenant: string; deviceId: string } | null {
  const t = subject.split(".");
  if (t.length !== 5 || t[0] !== "tenant" || t[2] !== "device" || t[4] !== "telemetry") return null;
  const [, tenant, , deviceId] = t as [string, string, string, string, string];
  return TENANT_ID_PATTERN.test(tenant) && DEVICE_ID_PATTERN.test(deviceId) ? { tenant, deviceId } : null;
}

export interface MqttParse {
  readings: Reading[];
  /** Records refused, by their position in the message. */
  rejected: Array<{ index: number; errors: FieldError[] }>;
}

/**
 * Validates and normalizes one MQTT message. `nowMs` is when the broker received it (its stream
 * timestamp), so a redelivery is judged exactly like the first delivery. A message that is not
 * JSON at all gives `{ error }`.
 */
export function parseMqttPayload(
  text: string,
  at: { tenant: string; deviceId: string; nowMs: number; maxFutureMs: number },
): MqttParse | { error: string } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { error: "payload is not JSON (expected a record object or an array of records)" };
  }
  const records = Array.isArray(body) ? body : [body];
  if (records.length === 0) return { error: "empty array: no records" };
  if (records.length > MQTT_MAX_RECORDS)
    return { error: `too many records in one message (${records.length} > ${MQTT_MAX_RECORDS})` };
  const out: MqttParse = { readings: [], rejected: [] };
  records.forEach((record, index) => {
    if (record === null || typeof record !== "object" || Array.isArray(record)) {
      out.rejected.push({ index, errors: [{ path: "", message: "a record must be a JSON object" }] });
      return;
    }
    const given = (record as { device_id?: unknown }).device_id;
    if (given !== undefined && given !== at.deviceId) {
      out.rejected.push({
        index,
        errors: [{ path: "device_id", message: `must be the topic's device (${at.deviceId}) or left out` }],
      });
      return;
    }
    const result = normalizeRecord(
      { ...record, device_id: at.deviceId },
      { tenant: at.tenant, nowMs: at.nowMs, maxFutureMs: at.maxFutureMs },
    );
    if (result.ok) out.readings.push(result.reading);
    else out.rejected.push({ index, errors: result.errors });
  });
  return out;
}

/** One line for the quarantine: what was wrong with which record. */
export function describeRejections(rejected: MqttParse["rejected"]): string {
  return rejected
    .map(
      (r) => `record ${r.index}: ${r.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; ")}`,
    )
    .join(" | ");
}
