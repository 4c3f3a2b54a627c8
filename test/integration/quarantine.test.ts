/**
 * Poison messages: the writer terminates them and keeps them in quarantine (never redelivered
 * forever, never blocking the rest); `telemetry quarantine list|show|replay|purge` deals with them.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { encodeEnvelope } from "../../src/core/envelope.ts";
import { normalizeRecord } from "../../src/core/record.ts";
import { telemetrySubject } from "../../src/core/subject.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { post, startTestServer, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;
let databaseUrl: string;

beforeAll(async () => {
  nats = await startNats();
  databaseUrl = await freshDatabase("quarantine");
  server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: databaseUrl });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

function cli(...args: string[]) {
  const r = Bun.spawnSync({
    cmd: [process.execPath, "src/cli/main.ts", "quarantine", ...args],
    env: { PATH: process.env.PATH!, NATS_URL: nats.url, DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" },
    stderr: "pipe",
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

test("undecodable and database-refused messages are quarantined once, and the good ones around them stored", async () => {
  const subject = telemetrySubject("acme", "poison-dev");
  await server.broker.js.publish(subject, "this is not an envelope", { msgID: "poison-1" });
  // Valid JSON envelope, but PostgreSQL's jsonb refuses the \\u0000 escape: a data error (22P05).
  const r = normalizeRecord(
    { device_id: "poison-dev", ts: BASE_TS, metrics: { v: 1 } },
    { tenant: "acme", nowMs: Date.now(), maxFutureMs: 0 },
  );
  if (!r.ok) throw new Error("setup");
  const refused = encodeEnvelope([{ ...r.reading, attributes: { note: "a\u0000b" } }], Date.now());
  await server.broker.js.publish(subject, refused, { msgID: "poison-2" });
  expect((await post(server, [{ device_id: "good-dev", ts: BASE_TS, metrics: { v: 2 } }])).status).toBe(202);

  const rows = await check(
    async () => {
      const q = await sql`SELECT id, reason, payload FROM quarantine ORDER BY id`;
      return q.length === 2 && q;
    },
    { what: "two quarantined messages" },
  );
  expect(rows[0]!.reason).toContain("undecodable");
  expect(rows[1]!.reason).toContain("refused by the database");
  await check(async () => (await sql`SELECT 1 FROM readings WHERE device_id = 'good-dev'`).length === 1, {
    what: "the good reading",
  });
  await check(
    async () => {
      const consumer = await server.broker.jsm.consumers.info("TELEMETRY", "writer");
      return consumer.num_ack_pending + consumer.num_pending === 0;
    },
    { what: "the writer's consumer to have nothing left (poison terminated, not redelivered)" },
  );

  const listed = cli("list");
  expect(listed.code).toBe(0);
  expect(listed.out.trim().split("\n")).toHaveLength(2);
  const shown = JSON.parse(cli("show", String(rows[0]!.id), "--json").out);
  expect(shown.payload).toBe("this is not an envelope");
  expect(cli("purge", String(rows[0]!.id)).out).toContain("purged 1");
  expect(cli("purge").code).not.toBe(0);
});

test("replay publishes a quarantined message again once its cause is fixed", async () => {
  const r = normalizeRecord(
    { device_id: "fixed-dev", ts: BASE_TS, metrics: { v: 3 } },
    { tenant: "acme", nowMs: Date.now(), maxFutureMs: 0 },
  );
  if (!r.ok) throw new Error("setup");
  await sql`INSERT INTO quarantine (source, subject, stream_seq, reason, payload)
            VALUES ('writer', ${telemetrySubject("acme", "fixed-dev")}, 999999, 'test', ${encodeEnvelope([r.reading], Date.now())})`;
  const replayed = cli("replay", "--all", "--source", "writer");
  expect(replayed.err).toBe("");
  expect(replayed.out).toContain("replayed 2");
  await check(async () => (await sql`SELECT 1 FROM readings WHERE device_id = 'fixed-dev'`).length === 1, {
    what: "the replayed reading",
  });
  // The still-refused one came back to quarantine under its new stream sequence.
  await check(async () => (await sql`SELECT count(*)::int AS n FROM quarantine`)[0]!.n === 1, {
    what: "the refused one back in quarantine",
  });
});
