/**
 * The device policy at ingest. Each process keeps, per tenant, the set of known device ids
 * (`devices` plus `device_registrations`), loaded on first use and reloaded in the background when
 * older than 5 s (one query per tenant until it settles), plus the new devices it admitted itself
 * that the writer has not stored yet ("provisional"). A request never waits for a reload, except
 * under 'reject' for a device not in the set, and then only while the reload is younger than
 * 250 ms (a healthy database has answered by then; a hanging one keeps no request waiting).
 *
 * 'auto' admits a new device while known + provisional < max_devices; 'reject' admits only known
 * devices. Several ingest processes each count their own provisional devices, so the cap can be
 * overshot by what they admit within one refresh: it is approximate, by design (no database
 * round trip per new device).
 */
import type { Sql } from "../db/client.ts";
import { deadline } from "../lib/deadline.ts";
import { logger } from "../lib/log.ts";
import type { TenantSettings } from "../core/tenant.ts";

const log = logger("devices");

export type Refusal = { code: "unknown_device" | "device_limit"; message: string };

/** Refused device ids with the reason, or `unavailable` when the set could never be loaded and the policy needs it. */
export type Admission = { refused: Map<string, Refusal> } | { unavailable: true };

interface KnownSet {
  known: Set<string>;
  provisional: Set<string>;
  loadedAt: number;
  usedAt: number;
}

const REFRESH_MS = 5_000;
const LOOKUP_TIMEOUT_MS = 2_000;
/** How long a reload may hold a request under 'reject' that brings a device not in the set. */
const REJECT_WAIT_MS = 250;
/** Sets unused this long are dropped (memory). */
const IDLE_MS = 600_000;

export class DeviceRegistry {
  private readonly sets = new Map<string, KnownSet>();
  private readonly loads = new Map<string, { promise: Promise<KnownSet>; startedAt: number }>();
  private readonly failedAt = new Map<string, number>();

  constructor(
    private readonly sql: Sql,
    private readonly now: () => number = Date.now,
  ) {}

  async admit(tenant: TenantSettings, deviceIds: Iterable<string>): Promise<Admission> {
    const ids = [...new Set(deviceIds)];
    let set = this.sets.get(tenant.id);
    if (!set) {
      this.dropIdle();
      set = await deadline(this.load(tenant.id), LOOKUP_TIMEOUT_MS, "device list").catch(() => undefined);
      if (!set) return tenant.devicePolicy === "auto" ? { refused: new Map() } : { unavailable: true };
    }
    set.usedAt = this.now();
    const isNew = (id: string) => !set.known.has(id) && !set.provisional.has(id);
    if (this.now() - set.loadedAt >= REFRESH_MS) this.load(tenant.id).catch(() => {});
    const reload = this.loads.get(tenant.id);
    if (reload && tenant.devicePolicy === "reject" && ids.some(isNew)) {
      const waitMs = reload.startedAt + REJECT_WAIT_MS - this.now();
      if (waitMs > 0) await deadline(reload.promise, waitMs, "device list").catch(() => {});
    }

    const refused = new Map<string, Refusal>();
    let room = tenant.limits.maxDevices - set.known.size - set.provisional.size;
    for (const id of ids.filter(isNew)) {
      if (tenant.devicePolicy === "reject")
        refused.set(id, {
          code: "unknown_device",
          message: "unknown device; register it first (POST /api/v1/devices)",
        });
      else if (room <= 0)
        refused.set(id, { code: "device_limit", message: `tenant device limit (${tenant.limits.maxDevices}) reached` });
      else {
        set.provisional.add(id);
        room--;
      }
    }
    return { refused };
  }

  /** A device registered or deleted through this process counts at once. */
  registered(tenantId: string, deviceId: string): void {
    this.sets.get(tenantId)?.known.add(deviceId);
  }

  deleted(tenantId: string, deviceId: string): void {
    const set = this.sets.get(tenantId);
    set?.known.delete(deviceId);
    set?.provisional.delete(deviceId);
  }

  /**
   * One load per tenant at a time, until its query settles (however long the database hangs);
   * a failure keeps the set it had and is not retried for 5 s.
   */
  private load(tenantId: string): Promise<KnownSet> {
    const current = this.loads.get(tenantId);
    if (current) return current.promise;
    const startedAt = this.now();
    if (startedAt - (this.failedAt.get(tenantId) ?? -Infinity) < REFRESH_MS)
      return Promise.reject(new Error("device list unavailable"));
    const query = this
      .sql`SELECT device_id FROM devices WHERE tenant = ${tenantId} UNION SELECT device_id FROM device_registrations WHERE tenant = ${tenantId}`;
    const loading = Promise.resolve(query)
      .then((rows) => {
        const set = this.sets.get(tenantId) ?? {
          known: new Set<string>(),
          provisional: new Set<string>(),
          loadedAt: 0,
          usedAt: startedAt,
        };
        set.known = new Set(rows.map((r) => r.device_id as string));
        for (const id of set.provisional) if (set.known.has(id)) set.provisional.delete(id);
        set.loadedAt = startedAt;
        this.sets.set(tenantId, set);
        this.failedAt.delete(tenantId);
        return set;
      })
      .catch((err) => {
        this.failedAt.set(tenantId, startedAt);
        log.warn(
          { tenant: tenantId, err: (err as Error).message },
          "could not load the tenant's devices; using what is known",
        );
        throw err;
      })
      .finally(() => this.loads.delete(tenantId));
    this.loads.set(tenantId, { promise: loading, startedAt });
    return loading;
  }

  private dropIdle(): void {
    const limit = this.now() - IDLE_MS;
    for (const [id, set] of this.sets) if (set.usedAt < limit) this.sets.delete(id);
  }
}
