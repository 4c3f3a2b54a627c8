/**
 * Message routes against a real nats-server, PostgreSQL and a local HTTP receiver: a webhook that
 * fails for a while, then drops 30 % of requests, then recovers gets every matching reading, each
 * batch signed, none accepted twice by a receiver deduplicating on delivery id; pausing and
 * resuming loses nothing; the failed list and replay; SIGKILL of the server (a subprocess)
 * mid-delivery loses nothing; NATS and MQTT republish reach the tenant's subscribers only.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { createSql } from "../../src/db/client.ts";
import { freePort } from "../../src/embedded/process.ts";
import { createKey } from "../../src/tenants/store.ts";
import { verifySignature } from "../../src/notify/signing.ts";
import { connectBroker } from "../../src/nats/connection.ts";
import { apiClient } from "../helpers/api.ts";
import { BASE_TS } from "../helpers/data.ts";
import { OTHER_KEY, post, startTestServer, TEST_KEY } from "../helpers/server.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";

const SECRET = "route-secret-0123456789abcdef";
/** Long enough that nothing dies while the receiver is down in the first test. */
const PATIENT = `0,${Array(40).fill("150ms").join(",")}`;
let nats: Awaited<ReturnType<typeof startNats>>;

beforeAll(async () => {
  nats = await startNats();
}, 60_000);
afterAll(async () => {
  await nats?.[Symbol.asyncDispose]();
});

interface Receiver {
  url: string;
  /** Accepted readings' event ids, in arrival order (a repeated delivery id is not accepted again). */
  accepted: string[];
  /** The same readings' device and time, to check the order per device. */
  order: Array<{ device: string; ts: string }>;
  requests: number;
  /** Requests answered 503 while dropping. */
  dropped: number;
  badSignatures: number;
  /** slow: accepts, then answers only after 3 s (a kill meanwhile leaves the batch delivered but not recorded). */
  mode: "fail" | "drop" | "ok" | "slow";
  /** Requests of the slow mode received so far. */
  slowSeen: number;
  stop(): void;
}

/** A receiver that deduplicates on X-Telemetry-Delivery and checks every signature. */
function receiver(): Receiver {
  const seen = new Set<string>();
  let seed = 7;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const r: Receiver = {
    url: "",
    accepted: [],
    order: [],
    requests: 0,
    dropped: 0,
    slowSeen: 0,
    badSignatures: 0,
    mode: "ok",
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      r.requests++;
      const body = await req.text();
      if (!verifySignature(SECRET, body, req.headers, Date.now() / 1000)) r.badSignatures++;
      if (r.mode === "fail") return new Response("down", { status: 503 });
      if (r.mode === "drop" && random() < 0.3) {
        r.dropped++;
        return new Response("dropped", { status: 503 });
      }
      const id = req.headers.get("x-telemetry-delivery")!;
      const batch = JSON.parse(body) as {
        delivery_id: string;
        readings: Array<{ event_id: string; device_id: string; ts: string }>;
      };
      expect(batch.delivery_id).toBe(id);
      if (!seen.has(id)) {
        seen.add(id);
        r.accepted.push(...batch.readings.map((x) => x.event_id));
        r.order.push(...batch.readings.map((x) => ({ device: x.device_id, ts: x.ts })));
      }
      if (r.mode === "slow") {
        r.slowSeen++;
        await Bun.sleep(3_000);
      }
      return new Response(null, { status: 204 });
    },
  });
  r.url = `http://127.0.0.1:${server.port}/hook`;
  return r;
}

let calls = 0;
/**
 * `n` records per device for `devices`; speed alternates above and below 80. Every call gets its
 * own time range: a record identical to an earlier one (same device and time) is the same reading,
 * which the stream's duplicate window drops.
 */
function records(prefix: string, devices: string[], n: number, offset = 0) {
  const base = BASE_TS + ++calls * 86_400_000;
  return devices.flatMap((d) =>
    Array.from({ length: n }, (_, i) => ({
      device_id: d,
      ts: base + (offset + i) * 1000,
      metrics: { speed: (offset + i) % 2 === 0 ? 100 : 10, temp: 20 },
      attributes: { tag: `${prefix}-${offset + i}` },
    })),
  );
}

/** Event ids of what the ingest accepted, for the records matching the route (veh-*, speed > 80). */
async function ingest(server: { url: string }, recs: ReturnType<typeof records>): Promise<string[]> {
  const res = await post(server, recs);
  expect(res.status).toBe(202);
  return res.body.results
    .map((x: { event_id: string }, i: number) => ({ id: x.event_id, rec: recs[i]! }))
    .filter((x: { rec: (typeof recs)[number] }) => x.rec.device_id.startsWith("veh-") && x.rec.metrics.speed > 80)
    .map((x: { id: string }) => x.id);
}

const webhookRoute = (url: string) => ({
  name: "fleet-hook",
  filter: { device_pattern: "veh-*", condition: "speed > 80", metrics: ["speed"] },
  destination: { type: "webhook", url, secret: SECRET },
});

test("webhook: failing, then dropping 30 %, then recovering: every matching reading once, all signed; pause/resume loses nothing", async () => {
  const hook = receiver();
  await using server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: await freshDatabase("routes"),
    TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1",
    TELEMETRY_ROUTE_SCHEDULE: PATIENT,
  });
  const api = apiClient(server);
  const created = await api.post("/api/v1/routes", webhookRoute(hook.url));
  expect(created.status).toBe(201);
  expect(created.body.secret).toBe(SECRET);
  expect(JSON.stringify((await api.get(`/api/v1/routes/${created.body.id}`)).body)).not.toContain(SECRET);
  const id = created.body.id as string;
  await server.routes!.syncNow();

  const expected: string[] = [];
  hook.mode = "fail";
  expected.push(...(await ingest(server, records("a", ["veh-1", "veh-2", "other"], 20))));
  await check(() => hook.requests >= 3, { what: "the failing receiver asked a few times" });
  hook.mode = "drop";
  for (let k = 1; k <= 12; k++) {
    expected.push(...(await ingest(server, records("b", ["veh-1", "veh-3", "car-9"], 6, k * 100))));
    await check(() => hook.accepted.length >= expected.length, { what: `deliveries while dropping (${k})` });
  }
  expect(hook.dropped).toBeGreaterThan(0);
  hook.mode = "ok";
  await check(() => hook.accepted.length >= expected.length, { what: "all matching readings", timeoutMs: 30_000 });

  // Paused: nothing goes out, the lag shows what waits; resumed: it all arrives.
  expect((await api.post(`/api/v1/routes/${id}/pause`)).body.state).toBe("paused");
  await server.routes!.syncNow();
  const before = hook.accepted.length;
  expected.push(...(await ingest(server, records("c", ["veh-1", "veh-4"], 10, 5_000))));
  await check(async () => (await api.get(`/api/v1/routes/${id}`)).body.lag >= 1, { what: "lag while paused" });
  expect(hook.accepted.length).toBe(before);
  expect((await api.post(`/api/v1/routes/${id}/resume`)).body.state).toBe("active");
  await check(() => hook.accepted.length >= expected.length, { what: "readings after resume", timeoutMs: 30_000 });

  expect(new Set(hook.accepted).size).toBe(hook.accepted.length); // none accepted twice
  expect([...hook.accepted].sort()).toEqual([...expected].sort());
  expect(hook.badSignatures).toBe(0);
  // In order per device (ISO times of one format compare as text).
  for (const [device, list] of Map.groupBy(hook.order, (x) => x.device))
    expect([device, list.map((x) => x.ts)]).toEqual([device, list.map((x) => x.ts).sort()]);
  await check(async () => (await api.get(`/api/v1/routes/${id}`)).body.lag === 0, { what: "no lag at the end" });
  hook.stop();
}, 120_000);

test("a batch whose schedule runs out goes to the failed list; replay delivers it with the same delivery id", async () => {
  const hook = receiver();
  hook.mode = "fail";
  await using server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: await freshDatabase("routes"),
    TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1",
    TELEMETRY_ROUTE_SCHEDULE: "0,50ms,50ms",
  });
  const api = apiClient(server);
  const { id } = (await api.post("/api/v1/routes", webhookRoute(hook.url))).body;
  await server.routes!.syncNow();
  const expected = await ingest(server, records("f", ["veh-1"], 6));
  const failed = await check(
    async () => {
      const f = (await api.get(`/api/v1/routes/${id}/failed`)).body.failed;
      return f.length > 0 && f;
    },
    { what: "a failed batch" },
  );
  expect(failed[0].attempts).toBe(3);
  expect(failed[0].last_error).toBe("http_503");
  expect(hook.accepted).toEqual([]);
  // Other tenants see nothing of it.
  expect((await apiClient(server, OTHER_KEY).get(`/api/v1/routes/${id}/failed`)).status).toBe(404);
  hook.mode = "ok";
  expect((await api.post(`/api/v1/routes/${id}/replay`, {})).body.replayed).toBe(failed.length);
  await check(() => hook.accepted.length >= expected.length, { what: "replayed readings" });
  expect([...hook.accepted].sort()).toEqual([...expected].sort());
  expect((await api.get(`/api/v1/routes/${id}/failed`)).body.failed).toEqual([]);
  hook.stop();
}, 60_000);

test("send first: a batch delivered at its first attempt is never stored; one whose first attempt fails is", async () => {
  const hook = receiver();
  const databaseUrl = await freshDatabase("routes");
  await using server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1",
    TELEMETRY_ROUTE_SCHEDULE: "0,50ms",
  });
  const api = apiClient(server);
  const { id } = (await api.post("/api/v1/routes", webhookRoute(hook.url))).body;
  await server.routes!.syncNow();
  const delivered: string[] = [];
  for (let k = 0; k < 3; k++) {
    delivered.push(...(await ingest(server, records("s", ["veh-1", "veh-2"], 4))));
    await check(() => hook.accepted.length >= delivered.length, { what: "delivered at the first attempt" });
  }
  hook.mode = "fail";
  await ingest(server, records("s", ["veh-1"], 2));
  await check(async () => (await api.get(`/api/v1/routes/${id}/failed`)).body.failed.length === 1, {
    what: "one failed batch",
  });
  await using sql = Object.assign(createSql(databaseUrl, { max: 1, name: "test" }), {
    [Symbol.asyncDispose]: () => sql.end({ timeout: 1 }),
  });
  // PostgreSQL's table statistics arrive within a second or so: only the failed batch was ever inserted.
  const inserted = await check(
    async () => {
      const [row] = await sql`SELECT n_tup_ins::int AS n FROM pg_stat_user_tables WHERE relname = 'route_batches'`;
      return (row?.n ?? 0) > 0 && (row!.n as number);
    },
    { what: "route_batches statistics" },
  );
  expect(inserted).toBe(1);
  const [route] = await sql`SELECT inflight_to FROM routes WHERE id = ${id}`;
  expect(route!.inflight_to).toBeNull();
  hook.stop();
}, 60_000);

test("a webhook URL on a private address is refused unless the operator allows it; bad filters get field errors", async () => {
  await using server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: await freshDatabase("routes") });
  const api = apiClient(server);
  const blocked = await api.post("/api/v1/routes", webhookRoute("http://127.0.0.1:9/x"));
  expect(blocked.status).toBe(422);
  expect(blocked.body.error.code).toBe("blocked_address");
  const bad = await api.post("/api/v1/routes", {
    name: "x",
    filter: { condition: "speed >> 80" },
    destination: { type: "nats", subject: "routes.v1.beta.steal" },
  });
  expect(bad.status).toBe(422);
  expect(JSON.stringify(bad.body)).toContain("condition");
  const other = await api.post("/api/v1/routes", {
    name: "x",
    destination: { type: "nats", subject: "routes.v1.beta.steal" },
  });
  expect(other.status).toBe(422);
  expect(other.body.error.details[0].path).toBe("destination.subject");
  expect((await api.get("/api/v1/routes")).body.routes).toEqual([]);
  // A NATS route turned into a webhook is signed from then on: a secret is made and shown once.
  const made = await api.post("/api/v1/routes", { name: "later-hook", destination: { type: "nats" } });
  expect(made.body.secret).toBeUndefined();
  const refused = await api.patch(`/api/v1/routes/${made.body.id}`, {
    destination: { type: "webhook", url: "http://10.0.0.1/x" },
  });
  expect(refused.body.error.code).toBe("blocked_address");
  const patched = await api.patch(`/api/v1/routes/${made.body.id}`, {
    destination: { type: "webhook", url: "https://example.com/hook" },
  });
  expect(patched.status).toBe(200);
  expect(patched.body.secret).toHaveLength(43);
  const shown = (await api.get(`/api/v1/routes/${made.body.id}`)).body;
  expect(shown.destination).toEqual({ type: "webhook", url: "https://example.com/hook", has_secret: true });
  expect(JSON.stringify(shown)).not.toContain(patched.body.secret);
  expect((await apiClient(server, OTHER_KEY).get("/api/v1/routes")).body.routes).toEqual([]);
});

test("SIGKILL of the server mid-delivery loses nothing; the receiver never accepts a reading twice", async () => {
  const hook = receiver();
  const databaseUrl = await freshDatabase("routes");
  const port = await freePort();
  const dataDir = join(nats.dir, `srv-${Date.now()}`);
  const start = () =>
    Bun.spawn({
      cmd: [process.execPath, "src/cli/main.ts", "serve"],
      cwd: join(import.meta.dir, "../.."),
      env: {
        PATH: process.env.PATH!,
        PORT: String(port),
        HOST: "127.0.0.1",
        TELEMETRY_DATA_DIR: dataDir,
        NATS_URL: nats.url,
        DATABASE_URL: databaseUrl,
        TELEMETRY_API_KEYS: `acme:${TEST_KEY}`,
        TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1",
        TELEMETRY_ROUTE_SCHEDULE: PATIENT,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
      },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "inherit",
    });
  const server = { url: `http://127.0.0.1:${port}` };
  const up = () =>
    check(async () => (await fetch(`${server.url}/ready`).catch(() => null))?.ok, {
      what: "server up",
      timeoutMs: 60_000,
    });
  let proc = start();
  try {
    await up();
    const api = apiClient(server);
    expect((await api.post("/api/v1/routes", webhookRoute(hook.url))).status).toBe(201);
    const expected: string[] = [];
    expected.push(...(await ingest(server, records("k", ["veh-1", "veh-2"], 20))));
    await check(() => hook.accepted.length >= expected.length, { what: "delivered before the kill" });
    // Killed while the receiver holds a batch it accepted: delivered, not recorded as delivered.
    hook.mode = "slow";
    expected.push(...(await ingest(server, records("k", ["veh-1", "veh-2"], 20))));
    await check(() => hook.slowSeen > 0, { what: "a batch in flight" });
    proc.kill("SIGKILL");
    await proc.exited;
    // Back with a failing receiver: the batch is sent again (same delivery id), and retried.
    hook.mode = "fail";
    proc = start();
    await up();
    const before = hook.requests;
    expected.push(...(await ingest(server, records("k", ["veh-1", "veh-2"], 20))));
    await check(() => hook.requests >= before + 2, { what: "retries after the restart" });
    // Killed again while batches are pending and being retried.
    proc.kill("SIGKILL");
    await proc.exited;
    hook.mode = "drop";
    proc = start();
    await up();
    for (let k = 0; k < 2; k++) expected.push(...(await ingest(server, records("k", ["veh-1", "veh-2"], 20))));
    await check(() => hook.dropped > 0, { what: "a dropped request" });
    hook.mode = "ok";
    await check(() => hook.accepted.length >= expected.length, {
      what: "everything after the restarts",
      timeoutMs: 60_000,
    });
    expect(new Set(hook.accepted).size).toBe(hook.accepted.length);
    expect([...hook.accepted].sort()).toEqual([...expected].sort());
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
    hook.stop();
  }
}, 180_000);

test("NATS republish: a subscriber on routes.v1.<tenant>.<route> gets the matching readings", async () => {
  await using server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: await freshDatabase("routes") });
  const api = apiClient(server);
  const sub = await connectBroker(nats.url, { name: "route-sub" });
  try {
    const got: Array<{ event_id: string; metrics: Record<string, number> }> = [];
    sub.nc.subscribe("routes.v1.acme.hot", { callback: (_e, m) => void got.push(m.json()) });
    await sub.nc.flush();
    const created = await api.post("/api/v1/routes", {
      name: "hot",
      filter: { devices: ["veh-1"], condition: "speed > 80" },
      destination: { type: "nats" },
    });
    expect(created.body.destination).toEqual({ type: "nats", subject: "routes.v1.acme.hot" });
    await server.routes!.syncNow();
    const expected = await ingest(server, records("n", ["veh-1", "veh-2"], 10));
    const want = expected.length / 2; // veh-1 only
    await check(() => got.length >= want, { what: "republished readings" });
    expect(got.length).toBe(want);
    expect(got.every((r) => (r.metrics.speed ?? 0) > 80)).toBe(true);
  } finally {
    await sub.close();
  }
}, 60_000);

/** A mosquitto_sub with -d: its SUBACK line tells whether the subscription was granted. */
function mqttSub(port: number, user: string, password: string, topic: string) {
  const proc = Bun.spawn({
    cmd: [
      "stdbuf",
      "-oL",
      "mosquitto_sub",
      "-d",
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-q",
      "0",
      "-t",
      topic,
      "-u",
      user,
      "-P",
      password,
    ],
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: string[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of proc.stdout) {
      rest += decoder.decode(chunk);
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
  })();
  return {
    lines,
    payloads: () => lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
    /** The granted QoS of the SUBACK (128: refused), or undefined before it came. */
    suback: () => {
      const l = lines.find((x) => /Subscribed \(mid: \d+\): /.test(x));
      return l === undefined ? undefined : Number(l.split(": ").at(-1));
    },
    exited: () => proc.exitCode !== null,
    stop: () => proc.kill(),
  };
}

test("MQTT republish: the tenant's mosquitto_sub receives the matching readings; another tenant's credentials receive nothing", async () => {
  const databaseUrl = await freshDatabase("routes");
  const mqttPort = await freePort();
  await using server = await startTestServer({
    DATABASE_URL: databaseUrl,
    TELEMETRY_NATS_PORT: String(await freePort()),
    TELEMETRY_MQTT_PORT: String(mqttPort),
    TELEMETRY_MQTT_HOST: "127.0.0.1",
    TELEMETRY_AUTH_CACHE_TTL: "1s",
  });
  const sql = createSql(databaseUrl, { max: 2, name: "test" });
  const subs: Array<ReturnType<typeof mqttSub>> = [];
  try {
    const acme = (await createKey(sql, "acme", "subscriber"))!;
    const beta = (await createKey(sql, "beta", "intruder"))!;
    // The key store reaches nats-server's users within the sync interval: retry until granted.
    const subscribe = async (key: typeof acme, topic: string) =>
      check(
        async () => {
          const s = mqttSub(mqttPort, key.row.prefix, key.key, topic);
          // Before the users sync, the CONNACK refuses (5) and mosquitto_sub exits without a SUBACK.
          const answered = await check(() => s.suback() !== undefined || s.exited(), { what: "SUBACK" }).catch(
            () => false,
          );
          if (answered && s.suback() !== undefined) {
            subs.push(s);
            return s;
          }
          s.stop();
          await Bun.sleep(300);
          return false;
        },
        { what: `MQTT subscription to ${topic}`, timeoutMs: 30_000 },
      );
    const mine = await subscribe(acme, "routes/v1/acme/#");
    expect(mine.suback()).toBe(0);
    const stolen = await subscribe(beta, "routes/v1/acme/#");
    expect(stolen.suback()).toBe(128); // refused: not beta's topics
    const own = await subscribe(beta, "routes/v1/beta/#");
    expect(own.suback()).toBe(0); // granted: its own route topics
    const api = apiClient(server);
    const created = await api.post("/api/v1/routes", {
      name: "speeding",
      filter: { device_pattern: "veh-*", condition: "speed > 80" },
      destination: { type: "mqtt" },
    });
    expect(created.status).toBe(201);
    expect(created.body.destination).toEqual({ type: "mqtt", subject: "routes/v1/acme/speeding" });
    await server.routes!.syncNow();
    const expected = await ingest(server, records("m", ["veh-1", "car-2"], 10));
    await check(() => mine.payloads().length >= expected.length, { what: "readings over MQTT" });
    expect(
      mine
        .payloads()
        .map((p: { event_id: string }) => p.event_id)
        .sort(),
    ).toEqual([...expected].sort());
    expect(stolen.payloads()).toEqual([]);
    expect(own.payloads()).toEqual([]);
  } finally {
    for (const s of subs) s.stop();
    await sql.end({ timeout: 5 });
  }
}, 90_000);

test("CLI: telemetry routes create|list|pause|show|resume|delete, and the lag in telemetry status", async () => {
  const databaseUrl = await freshDatabase("routes");
  await using server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: databaseUrl });
  const cli = (...args: string[]) => {
    const r = Bun.spawnSync({
      cmd: [process.execPath, "src/cli/main.ts", ...args],
      cwd: join(import.meta.dir, "../.."),
      env: {
        PATH: process.env.PATH!,
        NATS_URL: nats.url,
        DATABASE_URL: databaseUrl,
        LOG_LEVEL: "warn",
        TELEMETRY_SECRET_KEY: Buffer.alloc(32, 1).toString("base64"),
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const made = cli(
    "routes",
    "create",
    "acme",
    "--name",
    "fast",
    "--destination",
    '{"type":"nats"}',
    "--filter",
    '{"condition":"speed > 80"}',
    "--json",
  );
  expect(made.err).toBe("");
  expect(JSON.parse(made.out)).toMatchObject({
    name: "fast",
    state: "active",
    destination: { subject: "routes.v1.acme.fast" },
  });
  const bad = cli(
    "routes",
    "create",
    "acme",
    "--name",
    "x",
    "--destination",
    '{"type":"nats"}',
    "--filter",
    '{"condition":"speed"}',
  );
  expect(bad.code).not.toBe(0);
  expect(bad.err).toContain("filter.condition");
  expect(cli("routes", "pause", "acme", "fast").out).toContain("fast\tpaused");
  await server.routes!.syncNow();
  await ingest(server, records("cli", ["veh-1"], 4));
  const shown = await check(
    () => {
      const v = JSON.parse(cli("routes", "show", "acme", "fast", "--json").out);
      return v.lag >= 1 && v;
    },
    { what: "lag of the paused route" },
  );
  expect(shown.failed).toEqual([]);
  const status = JSON.parse(cli("status", "--json").out);
  expect(status.database.routes).toEqual([
    expect.objectContaining({ tenant: "acme", name: "fast", state: "paused", lag: shown.lag, pending_batches: 0 }),
  ]);
  expect(cli("routes", "list", "beta").out.trim()).toBe("no routes");
  expect(cli("routes", "resume", "acme", "fast").out).toContain("fast\tactive");
  await server.routes!.syncNow();
  await check(() => JSON.parse(cli("routes", "show", "acme", "fast", "--json").out).lag === 0, { what: "caught up" });
  expect(cli("routes", "delete", "acme", "fast").code).toBe(0);
  expect(cli("routes", "show", "acme", "fast").err).toContain("no route fast");
}, 90_000);

test("a dead webhook holds only its own route: another route and the writer keep up meanwhile", async () => {
  const dead = receiver();
  dead.mode = "fail";
  const databaseUrl = await freshDatabase("routes");
  await using server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1",
    TELEMETRY_ROUTE_SCHEDULE: PATIENT,
  });
  const api = apiClient(server);
  const sub = await connectBroker(nats.url, { name: "route-sub" });
  const sql = createSql(databaseUrl, { max: 1, name: "test" });
  try {
    const got: string[] = [];
    sub.nc.subscribe("routes.v1.acme.live", {
      callback: (_e, m) => void got.push(m.json<{ event_id: string }>().event_id),
    });
    await sub.nc.flush();
    const hook = (await api.post("/api/v1/routes", webhookRoute(dead.url))).body;
    await api.post("/api/v1/routes", { name: "live", filter: webhookRoute("").filter, destination: { type: "nats" } });
    await server.routes!.syncNow();
    const expected: string[] = [];
    for (let k = 0; k < 5; k++) expected.push(...(await ingest(server, records("d", ["veh-1", "veh-2"], 30))));
    await check(() => got.length >= expected.length, { what: "the live route's readings" });
    expect(got.sort()).toEqual([...expected].sort());
    // The writer stored them meanwhile (the stream is shared by this file's servers: count these readings only).
    const stored = async () =>
      (await sql`SELECT count(*)::int AS n FROM readings WHERE event_id = ANY(${expected}::uuid[])`)[0]!.n;
    await check(async () => (await stored()) === expected.length, { what: "the writer stored them all" });
    const stuck = (await api.get(`/api/v1/routes/${hook.id}`)).body;
    expect(stuck.pending_batches + stuck.lag).toBeGreaterThan(0);
    expect(dead.accepted).toEqual([]);
  } finally {
    await sub.close();
    await sql.end({ timeout: 5 });
    dead.stop();
  }
}, 60_000);
