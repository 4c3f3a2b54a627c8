/**
 * One attempt to deliver a route's batch (decision 0610): a webhook POST signed like alert
 * channels (signing.ts) to an address the target policy allows (http-post.ts), or a republish of
 * each reading to a NATS subject (which nats-server's MQTT listener also serves as an MQTT topic).
 * What is recorded for a failed attempt is a category (core/delivery-error.ts), never socket text.
 */
import { errorCategory, httpCategory } from "../core/delivery-error.ts";
import { republishSubject, type RouteDestination, type RoutedReading } from "../core/routes.ts";
import type { TargetPolicy } from "../core/target-policy.ts";
import type { Broker } from "../nats/connection.ts";
import { postJson } from "./http-post.ts";
import type { SecretBox } from "./secrets.ts";
import { signatureHeaders } from "./signing.ts";

export interface RouteTarget {
  id: string;
  tenant: string;
  name: string;
  destination: RouteDestination;
  /** Encrypted signing secret of a webhook. */
  secretEncrypted: string | null;
}

export interface Batch {
  id: string;
  readings: RoutedReading[];
}

export interface SendDeps {
  broker: Broker;
  secrets: SecretBox;
  targets: TargetPolicy;
  timeoutMs: number;
  signal?: AbortSignal;
}

export type SendOutcome = { ok: true } | { ok: false; error: string; detail: string };

/** The webhook body: the same bytes on every attempt of a batch. */
export function webhookBody(route: RouteTarget, batch: Batch): string {
  return JSON.stringify({
    delivery_id: batch.id,
    route: { id: route.id, name: route.name },
    tenant: route.tenant,
    readings: batch.readings,
  });
}

async function postBatch(route: RouteTarget, batch: Batch, url: string, deps: SendDeps): Promise<SendOutcome> {
  const body = webhookBody(route, batch);
  const secret = route.secretEncrypted === null ? null : deps.secrets.decrypt(route.secretEncrypted);
  const headers = {
    "Content-Type": "application/json",
    "User-Agent": "telemetry-routes",
    "X-Telemetry-Delivery": batch.id,
    "X-Telemetry-Event": "route.readings",
    ...(secret === null ? {} : signatureHeaders(secret, body, Date.now() / 1000)),
  };
  const status = await postJson(url, headers, body, {
    policy: deps.targets,
    timeoutMs: deps.timeoutMs,
    signal: deps.signal,
  });
  if (status >= 200 && status < 300) return { ok: true };
  return { ok: false, error: httpCategory(status), detail: `HTTP ${status}` };
}

async function republish(route: RouteTarget, batch: Batch, deps: SendDeps): Promise<SendOutcome> {
  const s = republishSubject(route.tenant, route.name, route.destination);
  if ("error" in s) return { ok: false, error: "invalid_subject", detail: s.error };
  for (const r of batch.readings) deps.broker.nc.publish(s.subject, JSON.stringify({ route: route.name, ...r }));
  // The server has them all once the flush comes back (core NATS: subscribers online receive them).
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      deps.broker.nc.flush(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(Object.assign(new Error(`timed out after ${deps.timeoutMs} ms`), { name: "TimeoutError" })),
          deps.timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return { ok: true };
}

export async function sendBatch(route: RouteTarget, batch: Batch, deps: SendDeps): Promise<SendOutcome> {
  try {
    if (route.destination.type === "webhook") return await postBatch(route, batch, route.destination.url, deps);
    return await republish(route, batch, deps);
  } catch (err) {
    const e = err as Error & { code?: unknown };
    return {
      ok: false,
      error: errorCategory(e),
      detail: `${typeof e.code === "string" ? `${e.code}: ` : ""}${e.name}`,
    };
  }
}
