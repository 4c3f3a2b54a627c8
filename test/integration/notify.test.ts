/**
 * The notification outbox against real PostgreSQL, nats-server and HTTP receivers: retries until
 * delivered, nothing lost when a notifier dies mid-delivery, no double delivery between concurrent
 * notifiers, hub and NATS destinations, an exhausted schedule, and the channel API.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHmac, randomBytes } from "node:crypto";
import { v4 as uuidv4 } from "uuid";
import { alertView } from "../../src/db/alert-row.ts";
import { createSql, type Sql } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { buildApp } from "../../src/http/app.ts";
import { connectBroker, type Broker } from "../../src/nats/connection.ts";
import { startNotifier, type Notifier, type NotifierOptions } from "../../src/notify/notifier.ts";
import { ALERT_STREAM, alertSubject } from "../../src/nats/topology.ts";
import { enqueueAlertNotifications } from "../../src/db/outbox.ts";
import { channelRoutes } from "../helpers/channels.ts";
import { createSecretBox } from "../../src/notify/secrets.ts";
import { verifySignature } from "../../src/notify/signing.ts";
import { parseAllowList } from "../../src/core/target-policy.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { fixedKeys } from "../helpers/keys.ts";

const secrets = createSecretBox(randomBytes(32));
const FAST = [0, 100, 200, 400, 800, 1_600];
const WEBHOOK_SECRET = "whsec-test-0123456789abcdef";
/** The receivers listen on loopback, which deliveries may reach only when the operator allows it. */
const LOOPBACK_ALLOWED = parseAllowList("127.0.0.1").policy;
let nats: Awaited<ReturnType<typeof startNats>>;
let broker: Broker;

beforeAll(async () => {
  nats = await startNats();
  broker = await connectBroker(nats.url, { name: "notify-test" });
}, 60_000);

afterAll(async () => {
  await broker?.close();
  await nats?.[Symbol.asyncDispose]();
});

async function database() {
  const url = await freshDatabase("notify");
  const sql = createSql(url, { max: 8, name: "test" });
  await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });
  return { url, sql, [Symbol.asyncDispose]: () => sql.end({ timeout: 5 }) };
}

interface Received {
  id: string;
  event: string;
  status: number;
  headers: Headers;
  body: string;
}

/** A real HTTP receiver; `answer` decides each response's status (n counts requests from 0). */
function receiver(answer: (n: number) => number | Promise<number>) {
  const received: Received[] = [];
  let release!: (status: number) => void;
  const hung = new Promise<number>((resolve) => (release = resolve));
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const entry = {
        id: req.headers.get("x-telemetry-delivery") ?? "",
        event: req.headers.get("x-telemetry-event") ?? "",
        status: 0,
        headers: req.headers,
        body: await req.text(),
      };
      const n = received.push(entry) - 1;
      entry.status = await answer(n);
      return new Response(null, { status: entry.status });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    received,
    /** Answer with this to never answer (until the receiver is disposed). */
    hung,
    ok: () => received.filter((r) => r.status >= 200 && r.status < 300).map((r) => r.id),
    async [Symbol.asyncDispose]() {
      release(503);
      await server.stop(true);
    },
  };
}

function notifier(sql: Sql, opts: NotifierOptions = {}): Notifier & AsyncDisposable {
  const n = startNotifier(
    { sql, broker, secrets },
    { pollMs: 50, scheduleMs: FAST, targets: LOOPBACK_ALLOWED, ...opts },
  );
  return Object.assign(n, { [Symbol.asyncDispose]: () => n.stop(2_000) });
}

async function addChannel(
  sql: Sql,
  kind: "webhook" | "hub",
  url: string,
  secret: string | null,
  tenant = "acme",
): Promise<string> {
  const id = uuidv4();
  await sql`INSERT INTO channels (id, tenant, name, kind, url, secret_encrypted)
            VALUES (${id}, ${tenant}, ${`${kind} ${id.slice(0, 8)}`}, ${kind}, ${url}, ${secret === null ? null : secrets.encrypt(secret)})`;
  return id;
}

/** Inserts `count` open alerts with their outbox rows, as the evaluator does: in one transaction. */
async function raiseAlerts(sql: Sql, count: number, tenant = "acme"): Promise<void> {
  const ruleId = uuidv4();
  await sql.begin(async (tx) => {
    for (let i = 0; i < count; i++) {
      const [row] = await tx`
        INSERT INTO alerts (id, tenant, rule_id, rule_name, device_id, metric, severity, kind, value, message, details, triggered_at)
        VALUES (${uuidv4()}, ${tenant}, ${ruleId}, 'too hot', ${`dev-${i}`}, 'temp', 'critical', 'threshold', ${80 + i},
                ${`temp ${80 + i} > 80`}, ${tx.json({ threshold: 80 })}, ${new Date(Date.UTC(2026, 0, 15, 10, 0, i)).toISOString()})
        RETURNING *`;
      expect(await enqueueAlertNotifications(tx, alertView(row!), "alert.opened")).toBeGreaterThan(0);
      // Evaluating the same change again adds nothing.
      expect(await enqueueAlertNotifications(tx, alertView(row!), "alert.opened")).toBe(0);
    }
  });
}

const idsOf = async (sql: Sql, kind: string) =>
  (await sql`SELECT id FROM outbox WHERE kind = ${kind} ORDER BY id`).map((r) => r.id as string);

const allSettled = (sql: Sql, status = "delivered") =>
  check(async () => (await sql`SELECT count(*)::int AS n FROM outbox WHERE status <> ${status}`)[0]!.n === 0, {
    timeoutMs: 20_000,
    what: `every outbox row ${status}`,
  });

/** Each expected id answered 2xx exactly once, and nothing else. */
function expectExactlyOnce(okIds: string[], expected: string[]) {
  expect(okIds.length).toBe(expected.length);
  expect([...okIds].sort()).toEqual([...expected].sort());
}

test("a flaky receiver gets every delivery exactly once with 2xx, every request signed", async () => {
  await using db = await database();
  await using hook = receiver((n) => (n < 15 ? 500 : 200));
  await addChannel(db.sql, "webhook", hook.url, WEBHOOK_SECRET);
  await raiseAlerts(db.sql, 10);
  await using n = notifier(db.sql);
  n.wake();
  await allSettled(db.sql);

  const expected = await idsOf(db.sql, "webhook");
  expect(expected.length).toBe(10);
  expectExactlyOnce(hook.ok(), expected);
  expect(hook.received.length).toBe(25);
  const now = Date.now() / 1000;
  for (const r of hook.received) {
    expect(verifySignature(WEBHOOK_SECRET, r.body, r.headers, now)).toBe(true);
    expect(r.headers.get("x-hub-signature-256")).toBe(
      `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(r.body).digest("hex")}`,
    );
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(r.headers.get("user-agent")).toBe("telemetry-notifier");
    const payload = JSON.parse(r.body);
    expect(payload.delivery_id).toBe(r.id);
    expect(payload.event).toBe("alert.opened");
    expect(r.event).toBe("alert.opened");
    expect(payload.alert).toMatchObject({
      tenant: "acme",
      rule_name: "too hot",
      metric: "temp",
      severity: "critical",
      status: "open",
      details: { threshold: 80 },
    });
    expect(payload.alert.triggered_at).toMatch(/^2026-01-15T10:00:0\d\.000Z$/);
  }
  // Every attempt is on record, and the counters agree with what the receiver saw.
  const rows = await db.sql`
    SELECT o.id, o.attempts, count(a.*)::int AS logged FROM outbox o LEFT JOIN delivery_attempts a ON a.delivery_id = o.id
    WHERE o.kind = 'webhook' GROUP BY o.id, o.attempts`;
  for (const r of rows) {
    expect(r.logged).toBe(r.attempts);
    expect(r.attempts).toBe(hook.received.filter((x) => x.id === r.id).length);
  }
});

test("a notifier killed mid-delivery loses nothing: another one delivers after the lease", async () => {
  await using db = await database();
  let healthy = false;
  await using hook = receiver(() => (healthy ? 200 : hook.hung));
  await addChannel(db.sql, "webhook", hook.url, WEBHOOK_SECRET);
  const sqlA = createSql(db.url, { max: 2, name: "notifier-a" });
  await using a = notifier(sqlA, { leaseMs: 1_000, timeoutMs: 60_000, concurrency: 10 });
  await raiseAlerts(db.sql, 5);
  a.wake();
  await check(() => hook.received.length === 5, { what: "A's five requests hanging at the receiver" });
  const [held] =
    await db.sql`SELECT count(*)::int AS n FROM outbox WHERE kind = 'webhook' AND status = 'pending' AND locked_until IS NOT NULL AND attempts = 0`;
  expect(held!.n).toBe(5);

  await sqlA.end({ timeout: 0 }); // the crash: A can never record anything again
  healthy = true;
  await using dead = notifier(sqlA);
  await check(() => dead.stats.errors > 0 && !dead.stats.healthy, {
    what: "a notifier without its database logs and keeps going",
  });
  await using b = notifier(db.sql);
  b.wake();
  await allSettled(db.sql);

  expectExactlyOnce(hook.ok(), await idsOf(db.sql, "webhook"));
  const attempts = await db.sql`SELECT attempts FROM outbox WHERE kind = 'webhook'`;
  expect(attempts.map((r) => r.attempts)).toEqual([1, 1, 1, 1, 1]);
});

test("two notifiers at once never deliver the same delivery twice", async () => {
  await using db = await database();
  await using hook = receiver(async () => {
    await Bun.sleep(5);
    return 200;
  });
  await addChannel(db.sql, "webhook", hook.url, WEBHOOK_SECRET);
  await raiseAlerts(db.sql, 40);
  const sqlB = createSql(db.url, { max: 4, name: "notifier-b" });
  try {
    await using a = notifier(db.sql, { batch: 4, concurrency: 2, pollMs: 10 });
    await using b = notifier(sqlB, { batch: 4, concurrency: 2, pollMs: 10 });
    a.wake();
    b.wake();
    await allSettled(db.sql);
    expectExactlyOnce(hook.ok(), await idsOf(db.sql, "webhook"));
    expect(hook.received.length).toBe(40);
    expect(a.stats.delivered + b.stats.delivered).toBe(80);
    expect(a.stats.delivered).toBeGreaterThan(0);
    expect(b.stats.delivered).toBeGreaterThan(0);
  } finally {
    await sqlB.end({ timeout: 5 });
  }
});

test("a hub channel gets its API key; the NATS event lands once on alerts.v1.<tenant>", async () => {
  await using db = await database();
  await using hub = receiver(() => 202);
  const apiKey = "hub-api-key-0123456789";
  await addChannel(db.sql, "hub", hub.url, apiKey, "hubco");
  await raiseAlerts(db.sql, 3, "hubco");
  await using n = notifier(db.sql);
  n.wake();
  await allSettled(db.sql);

  expectExactlyOnce(hub.ok(), await idsOf(db.sql, "hub"));
  for (const r of hub.received) {
    expect(r.headers.get("x-api-key")).toBe(apiKey);
    expect(r.headers.get("x-telemetry-signature")).toBeNull();
    expect(r.event).toBe("alert.opened");
    expect(JSON.parse(r.body).delivery_id).toBe(r.id);
  }

  const subject = alertSubject("hubco");
  const countOnSubject = async () =>
    (await broker.jsm.streams.info(ALERT_STREAM, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
  const natsIds = await idsOf(db.sql, "nats");
  expect(await countOnSubject()).toBe(3);
  const last = await broker.jsm.streams.getMessage(ALERT_STREAM, { last_by_subj: subject });
  expect(natsIds).toContain(last!.header.get("Nats-Msg-Id"));
  expect(last!.json<{ delivery_id: string }>().delivery_id).toBe(last!.header.get("Nats-Msg-Id"));

  // A crash between publish and recording makes the row go out again: the broker drops the copy.
  await db.sql`UPDATE outbox SET status = 'pending', delivered_at = NULL WHERE kind = 'nats'`;
  n.wake();
  await allSettled(db.sql);
  expect(await countOnSubject()).toBe(3);
});

test("an exhausted schedule fails the delivery with every attempt on record, no credentials in errors", async () => {
  await using db = await database();
  await using down = receiver(() => 500);
  const gone = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const closedPort = gone.port;
  await gone.stop(true);
  const failing = await addChannel(db.sql, "webhook", down.url, WEBHOOK_SECRET);
  const refused = await addChannel(
    db.sql,
    "webhook",
    `http://user:hunter2@127.0.0.1:${closedPort}/hook?token=sekrit`,
    null,
  );
  await raiseAlerts(db.sql, 1);
  await using n = notifier(db.sql, { scheduleMs: [0, 50, 50] });
  n.wake();
  await check(
    async () =>
      (await db.sql`SELECT count(*)::int AS n FROM outbox WHERE kind = 'webhook' AND status = 'failed'`)[0]!.n === 2,
    {
      what: "both webhook deliveries failed",
    },
  );

  const rows = await db.sql`SELECT channel_id, attempts, last_error, delivered_at FROM outbox WHERE kind = 'webhook'`;
  const byChannel = new Map(rows.map((r) => [r.channel_id as string, r]));
  expect(byChannel.get(failing)).toMatchObject({ attempts: 3, last_error: "http_500", delivered_at: null });
  expect(byChannel.get(refused)!.attempts).toBe(3);
  expect(down.received.length).toBe(3);
  const logged = await db.sql`
    SELECT o.channel_id, a.attempt, a.status_code, a.error FROM delivery_attempts a JOIN outbox o ON o.id = a.delivery_id
    WHERE o.kind = 'webhook' ORDER BY o.channel_id, a.attempt`;
  expect(logged.filter((r) => r.channel_id === failing).map((r) => [r.attempt, r.status_code])).toEqual([
    [1, 500],
    [2, 500],
    [3, 500],
  ]);
  for (const r of logged.filter((r) => r.channel_id === refused)) {
    expect(r.status_code).toBeNull();
    expect(r.error).toBe("refused"); // a category: socket text would make the API a port scanner
  }

  // The same history through the API.
  const app = buildApp([channelRoutes(db.sql, fixedKeys({ "key-acme": "acme" }), secrets)], [], () => false);
  const res = await app.request(`/api/v1/channels/${failing}/deliveries?status=failed`, {
    headers: { authorization: "Bearer key-acme" },
  });
  expect(res.status).toBe(200);
  const { deliveries } = (await res.json()) as any;
  expect(deliveries).toHaveLength(1);
  expect(deliveries[0]).toMatchObject({
    event: "alert.opened",
    status: "failed",
    attempts: 3,
    last_error: "http_500",
    next_attempt_at: null,
    delivered_at: null,
  });
  expect(deliveries[0].attempt_log.map((a: any) => [a.attempt, a.status_code, a.error])).toEqual([
    [1, 500, "http_500"],
    [2, 500, "http_500"],
    [3, 500, "http_500"],
  ]);
  expect(typeof deliveries[0].attempt_log[0].duration_ms).toBe("number");
});

test("channel API: the secret is shown once, stored encrypted, and other tenants see nothing", async () => {
  await using db = await database();
  const app = buildApp(
    [channelRoutes(db.sql, fixedKeys({ "key-acme": "acme", "key-beta": "beta" }), secrets)],
    [],
    () => false,
  );
  const call = async (method: string, path: string, body?: unknown, key = "key-acme") => {
    const res = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, json: text ? JSON.parse(text) : null };
  };

  const created = await call("POST", "/api/v1/channels", {
    name: "ops",
    kind: "webhook",
    url: "https://hooks.example.com/alerts",
  });
  expect(created.status).toBe(201);
  const { id, secret } = created.json;
  expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(created.json).toMatchObject({ name: "ops", kind: "webhook", enabled: true, has_secret: true });

  const [stored] = await db.sql`SELECT secret_encrypted FROM channels WHERE id = ${id}`;
  expect(stored!.secret_encrypted).not.toContain(secret);
  expect(secrets.decrypt(stored!.secret_encrypted)).toBe(secret);

  const list = await call("GET", "/api/v1/channels");
  const one = await call("GET", `/api/v1/channels/${id}`);
  for (const r of [list, one]) {
    expect(r.status).toBe(200);
    expect(r.text).not.toContain(secret);
    expect(r.text).not.toContain('"secret"');
  }
  expect(list.json.channels.map((c: any) => c.id)).toEqual([id]);

  const hub = await call("POST", "/api/v1/channels", {
    name: "hub",
    kind: "hub",
    url: "http://hub.internal:8080/api/events",
    secret: "hub-key-1",
  });
  expect(hub.status).toBe(201);
  expect(hub.json.secret).toBe("hub-key-1");
  expect((await call("GET", `/api/v1/channels/${hub.json.id}`)).text).not.toContain("hub-key-1");

  // Validation: field paths in details.
  const bad = async (body: unknown, path: string, status = 422) => {
    const r = await call("POST", "/api/v1/channels", body);
    expect(r.status).toBe(status);
    if (status === 422) expect(r.json.error.details.map((d: any) => d.path)).toContain(path);
  };
  await bad({ name: "x", kind: "hub", url: "https://hub.example.com" }, "secret");
  await bad({ name: "x", kind: "webhook", url: "ftp://files.example.com" }, "url");
  await bad({ name: "x", kind: "webhook", url: "https://a.example.com", secret: "short" }, "secret");
  await bad({ name: "x", kind: "email", url: "https://a.example.com" }, "kind");
  await bad({ name: "x", kind: "webhook", url: "https://a.example.com", extra: 1 }, "");
  await bad("{not json", "", 400);

  // Other tenants: 404 everywhere, and an empty list.
  expect((await call("GET", `/api/v1/channels/${id}`, undefined, "key-beta")).status).toBe(404);
  expect((await call("PATCH", `/api/v1/channels/${id}`, { enabled: false }, "key-beta")).status).toBe(404);
  expect((await call("DELETE", `/api/v1/channels/${id}`, undefined, "key-beta")).status).toBe(404);
  expect((await call("GET", `/api/v1/channels/${id}/deliveries`, undefined, "key-beta")).status).toBe(404);
  expect((await call("GET", "/api/v1/channels", undefined, "key-beta")).json.channels).toEqual([]);
  expect((await call("GET", "/api/v1/channels", undefined, "nope")).status).toBe(401);

  const patched = await call("PATCH", `/api/v1/channels/${id}`, {
    name: "ops-2",
    enabled: false,
    secret: "a-new-secret-of-24-chars",
  });
  expect(patched.status).toBe(200);
  expect(patched.json).toMatchObject({ name: "ops-2", enabled: false, url: "https://hooks.example.com/alerts" });
  expect(patched.text).not.toContain("a-new-secret");
  const [rotated] = await db.sql`SELECT secret_encrypted FROM channels WHERE id = ${id}`;
  expect(secrets.decrypt(rotated!.secret_encrypted)).toBe("a-new-secret-of-24-chars");
  expect((await call("PATCH", `/api/v1/channels/${id}`, { secret: "short" })).json.error.details).toEqual([
    { path: "secret", message: expect.any(String) },
  ]);

  // Disabled channels get no outbox rows.
  await raiseAlerts(db.sql, 1);
  expect(await idsOf(db.sql, "webhook")).toEqual([]);

  expect((await call("DELETE", `/api/v1/channels/${id}`)).status).toBe(204);
  expect((await call("GET", `/api/v1/channels/${id}`)).status).toBe(404);
});

/** Raises one alert and waits until every webhook row of the tenant is failed; returns each channel's stored error. */
async function failedErrors(sql: Sql, n: Notifier) {
  await raiseAlerts(sql, 1);
  n.wake();
  await check(
    async () =>
      (await sql`SELECT count(*)::int AS n FROM outbox WHERE kind <> 'nats' AND status <> 'failed'`)[0]!.n === 0,
    { what: "every channel's delivery failed" },
  );
  const rows =
    await sql`SELECT o.channel_id, o.last_error, a.error FROM outbox o JOIN delivery_attempts a ON a.delivery_id = o.id WHERE o.kind <> 'nats'`;
  for (const r of rows) expect(r.error).toBe(r.last_error);
  return new Map(rows.map((r) => [r.channel_id as string, r.last_error as string]));
}

test("tenants see error categories, not socket text; a redirect is not followed", async () => {
  await using db = await database();
  await using target = receiver(() => 200);
  await using hang = receiver(() => hang.hung);
  const redirect = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.redirect(target.url, 307) });
  const garbage = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data: (s) => void s.end("SSH-2.0-OpenSSH_9.6\r\n") },
  });
  const plain = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("not TLS") });
  const gone = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const closedPort = gone.port;
  await gone.stop(true);
  try {
    const channels = {
      redirected: await addChannel(db.sql, "webhook", `http://127.0.0.1:${redirect.port}/hook`, WEBHOOK_SECRET),
      malformed: await addChannel(db.sql, "webhook", `http://127.0.0.1:${garbage.port}/hook`, WEBHOOK_SECRET),
      timeout: await addChannel(db.sql, "webhook", hang.url, WEBHOOK_SECRET),
      tls: await addChannel(db.sql, "webhook", `https://127.0.0.1:${plain.port}/hook`, WEBHOOK_SECRET),
      refused: await addChannel(db.sql, "hub", `http://127.0.0.1:${closedPort}/events`, "hub-key"),
      dns: await addChannel(db.sql, "webhook", "http://no-such-host.invalid/hook", WEBHOOK_SECRET),
      missing: await addChannel(db.sql, "hub", target.url, null),
    };
    await using n = notifier(db.sql, { scheduleMs: [0], timeoutMs: 500 });
    const errors = await failedErrors(db.sql, n);
    expect(Object.fromEntries(Object.entries(channels).map(([k, id]) => [k, errors.get(id)]))).toEqual({
      redirected: "http_307",
      malformed: "network",
      timeout: "timeout",
      tls: "tls",
      refused: "refused",
      dns: "dns",
      missing: "missing_secret",
    });
    expect(target.received).toHaveLength(0); // neither the redirect's target nor the key-less hub got anything
  } finally {
    await Promise.all([redirect.stop(true), plain.stop(true)]);
    garbage.stop(true);
  }
});

test("by default a delivery never reaches loopback: an IP literal, or a name resolving there (checked when connecting)", async () => {
  await using db = await database();
  await using hook = receiver(() => 200);
  const port = new URL(hook.url).port;
  const literal = await addChannel(db.sql, "webhook", hook.url, WEBHOOK_SECRET);
  const mapped = await addChannel(db.sql, "webhook", `http://[::ffff:127.0.0.1]:${port}/hook`, WEBHOOK_SECRET);
  const named = await addChannel(db.sql, "hub", `http://localhost:${port}/hook`, "hub-key");
  await using n = notifier(db.sql, { scheduleMs: [0], targets: undefined });
  const errors = await failedErrors(db.sql, n);
  expect([errors.get(literal), errors.get(mapped), errors.get(named)]).toEqual([
    "blocked_address",
    "blocked_address",
    "blocked_address",
  ]);
  expect(hook.received).toHaveLength(0);

  // The operator allows the name: the same rows, due again, are delivered.
  await db.sql`UPDATE outbox SET status = 'pending', next_attempt_at = now() WHERE channel_id = ${named}`;
  await using allowed = notifier(db.sql, { targets: parseAllowList("localhost").policy });
  allowed.wake();
  await check(
    async () => (await db.sql`SELECT status FROM outbox WHERE channel_id = ${named}`)[0]!.status === "delivered",
    { what: "the allowed name's delivery" },
  );
  expect(hook.received.map((r) => r.headers.get("x-api-key"))).toEqual(["hub-key"]);
});
