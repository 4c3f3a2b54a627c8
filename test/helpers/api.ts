/** Small HTTP client for the tenant API in tests. */
import { TEST_KEY } from "./server.ts";

export interface ApiResult<T = any> {
  status: number;
  body: T;
}

export function apiClient(server: { url: string }, key = TEST_KEY) {
  const call = async <T = any>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return {
    call,
    get: <T = any>(path: string) => call<T>("GET", path),
    post: <T = any>(path: string, body?: unknown) => call<T>("POST", path, body ?? {}),
    put: <T = any>(path: string, body: unknown) => call<T>("PUT", path, body),
    patch: <T = any>(path: string, body: unknown) => call<T>("PATCH", path, body),
    del: (path: string) => call("DELETE", path),
    /** Posts telemetry records and expects 202. */
    async ingest(records: unknown[]) {
      const r = await call("POST", "/api/v1/telemetry", records);
      if (r.status !== 202) throw new Error(`ingest answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async createRule(rule: Record<string, unknown>): Promise<{ id: string }> {
      const r = await call("POST", "/api/v1/rules", rule);
      if (r.status !== 201) throw new Error(`rule creation answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async alerts(query = ""): Promise<any[]> {
      const r = await call("GET", `/api/v1/alerts${query ? `?${query}` : ""}`);
      if (r.status !== 200) throw new Error(`alerts answered ${r.status}`);
      return r.body.alerts;
    },
  };
}
