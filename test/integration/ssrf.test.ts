/**
 * A tenant cannot point the notifier at the server's own network (SSRF). Against the real server
 * over real HTTP: a channel to a loopback, private, link-local, ... address in any spelling is
 * refused when saved (422 blocked_address, nothing stored); a name resolving to loopback is
 * refused when delivering, before any connection (the loopback receiver counts nothing); the
 * operator's TELEMETRY_WEBHOOK_ALLOW lets a listed target through; and what the deliveries API
 * says about a failure is a category, never socket text.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql } from "../../src/db/client.ts";
import { apiClient } from "../helpers/api.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

let receiver: ReturnType<typeof Bun.serve>;
let hits = 0;

beforeAll(() => {
  // Dual-stack, so `localhost` reaches it whether it resolves to 127.0.0.1 or ::1.
  receiver = Bun.serve({ hostname: "::", port: 0, fetch: () => (hits++, new Response("ok")) });
});

afterAll(async () => {
  await receiver?.stop(true);
});

/** A server of its own (own nats-server and database), with one attempt per delivery. */
async function server(name: string, env: Record<string, string> = {}) {
  const nats = await startNats();
  const url = await freshDatabase(`ssrf-${name}`);
  const srv: TestServer = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: url,
    TELEMETRY_DELIVERY_SCHEDULE: "0",
    ...env,
  });
  const sql = createSql(url, { max: 2, name: "test" });
  const stop = srv[Symbol.asyncDispose].bind(srv);
  return Object.assign(srv, {
    sql,
    api: apiClient(srv),
    async [Symbol.asyncDispose]() {
      await sql.end({ timeout: 5 });
      await stop();
      await nats[Symbol.asyncDispose]();
    },
  });
}

/** Opens an alert (a hot reading) and waits until each of the channels has a settled delivery; returns the deliveries. */
async function alertAndSettle(s: Awaited<ReturnType<typeof server>>, channelIds: string[], device: string) {
  const rules = await s.api.get("/api/v1/rules");
  if (rules.body.rules.length === 0)
    await s.api.createRule({
      name: "hot",
      metric: "temp",
      condition: { type: "above_threshold", threshold: 100 },
      cooldown_seconds: 0,
    });
  await s.api.ingest([{ device_id: device, ts: Date.now(), metrics: { temp: 120 } }]);
  const out: Record<string, any> = {};
  for (const id of channelIds) {
    out[id] = await check(
      async () => {
        const r = await s.api.get(`/api/v1/channels/${id}/deliveries`);
        const d = r.body.deliveries.find((x: any) => x.status !== "pending");
        return d && { ...d, text: JSON.stringify(r.body) };
      },
      { what: `a settled delivery of channel ${id}`, timeoutMs: 30_000 },
    );
  }
  return out;
}

const LOOPBACK = [
  "127.0.0.1",
  "2130706433",
  "0177.0.0.1",
  "0x7f.1",
  "0x7f000001",
  "127.1",
  "127.0.0.1.",
  "[::1]",
  "[::ffff:127.0.0.1]",
  "[0:0:0:0:0:ffff:7f00:1]",
  "[64:ff9b::7f00:1]",
];
const OTHERS = [
  "169.254.169.254",
  "0xa9fea9fe",
  "[::ffff:169.254.169.254]",
  "0.0.0.0",
  "0",
  "10.0.0.1",
  "012.1.2.3",
  "172.16.5.4",
  "192.168.0.1",
  "100.64.0.1",
  "224.0.0.1",
  "255.255.255.255",
  "240.1.2.3",
  "[fd00::1]",
  "[fe80::1]",
  "[ff02::1]",
  "[::]",
];

test("a channel to a forbidden address, in any spelling, is refused with 422 blocked_address and nothing is stored", async () => {
  await using s = await server("create");
  const refused: string[] = [];
  for (const host of [...LOOPBACK, ...OTHERS]) {
    for (const kind of ["webhook", "hub"] as const) {
      const r = await s.api.post("/api/v1/channels", {
        name: "x",
        kind,
        url: `http://${host}:${receiver.port}/hook`,
        secret: "a-secret-of-16-chars-or-more",
      });
      if (r.status === 422 && r.body.error.code === "blocked_address" && r.body.error.details[0].path === "url")
        refused.push(`${kind} ${host}`);
      else console.error(kind, host, r.status, JSON.stringify(r.body));
    }
  }
  expect(refused).toHaveLength((LOOPBACK.length + OTHERS.length) * 2);
  const one = await s.api.post("/api/v1/channels", { name: "x", kind: "webhook", url: "http://0x7f.1/hook" });
  expect(one.body.error.message).toContain("loopback");
  expect(one.body.error.message).toContain("TELEMETRY_WEBHOOK_ALLOW");
  expect((await s.sql`SELECT count(*)::int AS n FROM channels`)[0]!.n).toBe(0);

  // Changing a saved channel's URL is checked the same way, and leaves it as it was.
  const ok = await s.api.post("/api/v1/channels", {
    name: "ops",
    kind: "webhook",
    url: "https://hooks.example.com/a",
    enabled: false,
  });
  expect(ok.status).toBe(201);
  for (const host of ["127.1", "[::ffff:a9fe:a9fe]", "192.168.1.1"]) {
    const r = await s.api.patch(`/api/v1/channels/${ok.body.id}`, { url: `http://${host}/x`, name: "changed" });
    expect([r.status, r.body.error?.code]).toEqual([422, "blocked_address"]);
  }
  expect((await s.api.get(`/api/v1/channels/${ok.body.id}`)).body).toMatchObject({
    name: "ops",
    url: "https://hooks.example.com/a",
  });
  expect(hits).toBe(0);
});

test("a name resolving to loopback is refused when delivering: blocked_address, and nothing reaches the receiver", async () => {
  await using s = await server("rebind");
  const before = hits;
  const channel = await s.api.post("/api/v1/channels", {
    name: "ops",
    kind: "webhook",
    url: `http://localhost:${receiver.port}/hook`,
  });
  expect(channel.status).toBe(201); // a name is checked on what it resolves to, each time it is used
  const hub = await s.api.post("/api/v1/channels", {
    name: "hub",
    kind: "hub",
    url: `http://LOCALHOST:${receiver.port}/events`,
    secret: "hub-key",
  });
  expect(hub.status).toBe(201);
  const settled = await alertAndSettle(s, [channel.body.id, hub.body.id], "boiler-1");
  for (const d of Object.values(settled)) {
    expect(d).toMatchObject({ status: "failed", attempts: 1, last_error: "blocked_address" });
    expect(d.attempt_log).toEqual([
      expect.objectContaining({ attempt: 1, status_code: null, error: "blocked_address" }),
    ]);
    expect(d.text).not.toMatch(/127\.0\.0\.1|::1|ECONN|refused by/);
  }
  expect(hits).toBe(before);
});

test("TELEMETRY_WEBHOOK_ALLOW lets a listed target through; other failures are categories without socket text", async () => {
  await using s = await server("allow", { TELEMETRY_WEBHOOK_ALLOW: "localhost" });
  const gone = Bun.serve({ hostname: "::", port: 0, fetch: () => new Response() });
  const closedPort = gone.port;
  await gone.stop(true);
  const garbage = Bun.listen({
    hostname: "::",
    port: 0,
    socket: { data: (sock) => void sock.end("220 smtp.internal ESMTP\r\n") },
  });
  try {
    const before = hits;
    const post = async (url: string) =>
      (await s.api.post("/api/v1/channels", { name: url, kind: "webhook", url })).body.id as string;
    const delivered = await post(`http://localhost:${receiver.port}/hook`);
    const refused = await post(`http://localhost:${closedPort}/hook`);
    const malformed = await post(`http://localhost:${garbage.port}/hook`);
    // the allow list names a host, not what it resolves to: the address itself is still refused
    expect(
      (
        await s.api.post("/api/v1/channels", {
          name: "ip",
          kind: "webhook",
          url: `http://127.0.0.1:${receiver.port}/hook`,
        })
      ).body.error.code,
    ).toBe("blocked_address");

    const settled = await alertAndSettle(s, [delivered, refused, malformed], "boiler-2");
    expect(settled[delivered]).toMatchObject({ status: "delivered", attempts: 1, last_error: null });
    expect(hits).toBe(before + 1);
    expect(settled[refused]).toMatchObject({ status: "failed", last_error: "refused" });
    expect(settled[malformed]).toMatchObject({ status: "failed", last_error: "network" });
    for (const id of [refused, malformed])
      expect(settled[id].text).not.toMatch(/ECONNREFUSED|Malformed|HPE_|Parse Error|connect /);
  } finally {
    garbage.stop(true);
  }
});
