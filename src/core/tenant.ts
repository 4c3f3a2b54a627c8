/** A tenant's settings as ingest, MQTT and HTTP auth use them, and the answer of an API key lookup (types only). */
import type { LineMapping } from "./line-protocol-map.ts";

export type DevicePolicy = "auto" | "reject";

export interface TenantLimits {
  maxDevices: number;
  ratePerSecond: number;
  burst: number;
  deviceRatePerSecond: number;
  deviceBurst: number;
  maxRecordsPerRequest: number;
}

export interface TenantSettings {
  id: string;
  status: "active" | "suspended";
  suspendedReason: string | null;
  devicePolicy: DevicePolicy;
  limits: TenantLimits;
  /** The tenant's own line-protocol mapping settings; the absent ones follow the server's. */
  lineProtocol?: Partial<LineMapping> | null;
}

/**
 * What a key may do: `tenant` (write any device of its tenant, use the tenant API), `device` (write
 * only the readings of its one device), `provision` (only exchange a new device's id for that
 * device's key, POST /api/v1/provision).
 */
export type KeyKind = "tenant" | "device" | "provision";

/**
 * The answer of a key lookup: the key's tenant, its kind and device (null unless a device key), unknown (401), cannot tell now (503), or not
 * looked up because the client address made too many failed checks (429) or the process's
 * budget of key-store lookups is spent (503).
 */
export type KeyResolution =
  | { status: "ok"; keyId: string; tenant: TenantSettings; kind: KeyKind; device: string | null }
  | { status: "unknown" }
  | { status: "unavailable" }
  | { status: "limited"; scope: "client" | "global"; retryAfterMs: number };
/** Where a request came from: the socket's peer and its X-Forwarded-For (per-address failure limit). */
export interface RequestOrigin {
  peer: string;
  forwardedFor?: string;
}
export type KeyResolver = (key: string, from?: RequestOrigin) => Promise<KeyResolution>;
