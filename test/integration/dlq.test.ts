/**
 * The dead-letter path end to end: a publish the broker refuses for good (here: a message over
 * the stream's size limit) is retried, then kept in the dead-letter stream and reported as
 * `dead_lettered` in the 202 response, while the other records of the request are stored;
 * `telemetry dlq list` shows it, `telemetry dlq replay` (once the cause is fixed) stores its
 * readings exactly once and removes it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { BASE_TS } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { post, startTestServer, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;
let databaseUrl: string;

beforeAll(async () => {
  nats = await startNats();
  databaseUrl = await freshDatabase("dlq");
  server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: databaseUrl });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
});

function cli(...args: string[]) {
  const r = Bun.spawnSync({
    cmd: [process.execPath, "src/cli/main.ts", ...args],
    env: { PATH: process.env.PATH!, NATS_URL: nats.url, LOG_LEVEL: "warn" },
    stderr: "pipe",
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

const rows = async (device: string) =>
  (await sql`SELECT count(*)::int AS n FROM readings WHERE device_id = ${device}`)[0]!.n as number;

test("a message the stream refuses goes to the dead-letter stream; replayed, its readings are stored once", async () => {
  await server.broker.jsm.streams.update("TELEMETRY", { max_msg_size: 2_000 });
  const big = Array.from({ length: 40 }, (_, i) => ({
    device_id: "big",
    ts: BASE_TS + i * 1000,
    metrics: { temp: 20 + i, humidity: 50 },
  }));
  const small = { device_id: "small", ts: BASE_TS, metrics: { temp: 1 } };
  const res = await post(server, [...big, small]);
  expect(res.status).toBe(202);
  const statuses = res.body.results.map((r: { status: string }) => r.status);
  expect(statuses.slice(0, 40)).toEqual(Array(40).fill("dead_lettered"));
  expect(statuses[40]).toBe("accepted");
  expect(res.body.results[0].error).toMatch(/maximum/i);
  await check(async () => (await rows("small")) === 1, { what: "the small record stored", timeoutMs: 20_000 });
  expect(await rows("big")).toBe(0);

  const listed = cli("dlq", "list", "--json");
  expect(listed.code).toBe(0);
  const letters = JSON.parse(listed.out);
  expect(letters).toHaveLength(1);
  expect(letters[0]).toMatchObject({
    subject: expect.stringMatching(/^telemetry\.v1\.acme\./),
    readings: 40,
    failure: expect.stringMatching(/maximum/i),
  });

  // Still refused: the letter stays, the command says so.
  const refused = cli("dlq", "replay", "--all");
  expect(refused.code).toBe(1);
  expect(JSON.parse(cli("dlq", "list", "--json").out)).toHaveLength(1);

  await server.broker.jsm.streams.update("TELEMETRY", { max_msg_size: -1 });
  const replayed = cli("dlq", "replay", String(letters[0].seq));
  expect(replayed.out).toContain("replayed 1 dead letter(s)");
  await check(async () => (await rows("big")) === 40, {
    what: "the 40 dead-lettered readings stored",
    timeoutMs: 20_000,
  });
  expect(JSON.parse(cli("dlq", "list", "--json").out)).toEqual([]);
  // Posting the same records again adds nothing.
  expect(
    (await post(server, big)).body.results.every(
      (r: { status: string }) => r.status === "duplicate" || r.status === "accepted",
    ),
  ).toBe(true);
  await check(
    async () => {
      const c = await server.broker.jsm.consumers.info("TELEMETRY", "writer");
      return c.num_pending + c.num_ack_pending === 0;
    },
    { what: "the writer to catch up", timeoutMs: 20_000 },
  );
  expect(await rows("big")).toBe(40);
  expect(cli("dlq", "purge").code).toBe(1); // which ones?
  expect(cli("dlq", "purge", "--all").out).toContain("purged 0 dead letter(s)");
}, 60_000);
