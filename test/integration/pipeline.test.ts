/**
 * Foundation, end to end over real HTTP, real nats-server and real PostgreSQL:
 * 10,000 records with invalid ones and duplicates mixed in -> exactly the valid distinct readings.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSql, type Sql } from "../../src/db/client.ts";
import { BASE_TS, identity, INVALID_KINDS, validRecords, type GenRecord } from "../helpers/data.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";
import { ndjson, post, startTestServer, type TestServer } from "../helpers/server.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let sql: Sql;

beforeAll(async () => {
  nats = await startNats();
  const databaseUrl = await freshDatabase("pipeline");
  server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: databaseUrl });
  sql = createSql(databaseUrl, { max: 2, name: "test" });
}, 60_000);

afterAll(async () => {
  await sql?.end();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

const rowCount = async () => Number((await sql`SELECT count(*)::int AS n FROM readings WHERE tenant = 'acme'`)[0]!.n);

describe("10,000 mixed records", () => {
  // 9,000 valid distinct + 600 repeats of earlier records + 400 invalid = 10,000, shuffled deterministically.
  const valid = validRecords(9_000, 200);
  const repeats = Array.from({ length: 600 }, (_, i) => valid[(i * 37) % valid.length]!);
  const invalid = Array.from({ length: 400 }, (_, i) => INVALID_KINDS[i % INVALID_KINDS.length]!(i));
  const all: unknown[] = [...valid, ...repeats, ...invalid];
  for (let i = all.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  const requests: unknown[][] = [];
  for (let i = 0; i < all.length; i += 500) requests.push(all.slice(i, i + 500));
  const expected = new Set(valid.map(identity));
  const validSet = new Set<unknown>(valid);

  test("holds exactly the valid distinct readings", async () => {
    let rejected = 0;
    let accepted = 0;
    for (const [n, batch] of requests.entries()) {
      const res =
        n % 2 === 0
          ? await post(server, batch)
          : await post(server, ndjson(batch), { contentType: "application/x-ndjson", raw: true });
      expect(res.status).toBe(202);
      expect(res.body.results).toHaveLength(batch.length);
      batch.forEach((rec, i) => {
        const result = res.body.results[i];
        expect(result.index).toBe(i);
        const isValid = validSet.has(rec);
        expect(result.status === "rejected").toBe(!isValid);
        if (result.status === "rejected") expect(result.errors[0].message.length).toBeGreaterThan(0);
      });
      rejected += res.body.rejected;
      accepted += res.body.accepted;
    }
    expect(rejected).toBe(400);
    expect(accepted).toBeGreaterThanOrEqual(valid.length);

    await check(async () => (await rowCount()) === expected.size, { what: `${expected.size} rows`, timeoutMs: 60_000 });
    const rows =
      await sql`SELECT device_id, (extract(epoch from ts) * 1000)::bigint AS ms FROM readings WHERE tenant = 'acme'`;
    const got = new Set(rows.map((r) => `${r.device_id}@${r.ms}`));
    expect(got.size).toBe(rows.length);
    expect([...expected].every((k) => got.has(k))).toBe(true);

    const devices =
      await sql`SELECT device_id, (extract(epoch from last_seen) * 1000)::bigint AS ms FROM devices WHERE tenant = 'acme'`;
    expect(devices).toHaveLength(200);
    const lastSeen = new Map<string, number>();
    for (const r of valid) {
      const ms = typeof r.ts === "number" ? r.ts : Date.parse(r.ts);
      lastSeen.set(r.device_id, Math.max(lastSeen.get(r.device_id) ?? 0, ms));
    }
    for (const d of devices) expect(Number(d.ms)).toBe(lastSeen.get(d.device_id as string)!);
  });

  test("posting everything again adds no row and reports duplicates", async () => {
    let duplicate = 0;
    for (const batch of requests) {
      const res = await post(server, batch);
      expect(res.status).toBe(202);
      expect(res.body.accepted).toBe(0);
      duplicate += res.body.duplicate;
    }
    expect(duplicate).toBe(valid.length + repeats.length);
    // Give the writer time to (not) add anything: wait until the consumer has nothing pending.
    await check(async () => server.writer!.stats.held === 0 && (await rowCount()) === expected.size, {
      what: "writer idle",
    });
    expect(await rowCount()).toBe(expected.size);
  });

  test("1-minute rollups count every distinct reading exactly once", async () => {
    const [r] =
      await sql`SELECT sum(count)::int AS n, sum(sum) AS s, min(min) AS mn, max(max) AS mx FROM readings_1m WHERE tenant = 'acme' AND metric = 'temp'`;
    const temps = valid.map((v) => v.metrics!.temp!);
    expect(r!.n).toBe(valid.length);
    expect(r!.s).toBeCloseTo(
      temps.reduce((a, b) => a + b, 0),
      6,
    );
    expect([r!.mn, r!.mx]).toEqual([Math.min(...temps), Math.max(...temps)]);
    const [bucket] =
      await sql`SELECT count, sum, sum_sq FROM readings_1m WHERE tenant = 'acme' AND device_id = 'dev-0' AND metric = 'rssi' ORDER BY bucket LIMIT 1`;
    const inFirstMinute = valid.filter(
      (v) => v.device_id === "dev-0" && (typeof v.ts === "number" ? v.ts : Date.parse(v.ts)) < BASE_TS + 60_000,
    );
    expect(Number(bucket!.count)).toBe(inFirstMinute.length);
    expect(bucket!.sum_sq).toBeCloseTo(
      inFirstMinute.reduce((a, v) => a + v.metrics!.rssi! ** 2, 0),
      6,
    );
  });

  test("duplicates inside one request give one row, whatever their attributes", async () => {
    const rec: GenRecord = {
      device_id: "dup-dev",
      ts: BASE_TS + 5,
      metrics: { v: 1 },
      location: { lat: 1.23456789, lon: 2.5 },
    };
    const same = { ...rec, location: { lat: 1.2345679, lon: 2.5 }, attributes: { note: "copy" } }; // same after rounding
    const res = await post(server, [rec, same, rec]);
    expect(res.status).toBe(202);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(["accepted", "duplicate", "duplicate"]);
    await check(async () => (await sql`SELECT 1 FROM readings WHERE device_id = 'dup-dev'`).length === 1, {
      what: "dup-dev row",
    });
    await Bun.sleep(300);
    expect([...(await sql`SELECT lat, lon FROM readings WHERE device_id = 'dup-dev'`)]).toEqual([
      { lat: 1.2345679, lon: 2.5 },
    ]);
  });

  test("the API reads a tenant's own devices and readings, and nothing of another tenant", async () => {
    const get = (path: string, key = "test-key-acme-0123456789") =>
      fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const json = async (path: string, key?: string): Promise<any> => (await get(path, key)).json();
    const list = await json("/api/v1/devices?limit=5");
    expect(list.devices).toHaveLength(5);
    expect(list.next_after).toBe(list.devices[4].device_id);
    const readings = await json("/api/v1/devices/dup-dev/readings");
    expect(readings.readings).toHaveLength(1);
    expect(readings.readings[0].location).toEqual({ lat: 1.2345679, lon: 2.5 });
    expect((await get("/api/v1/devices/dup-dev", "test-key-beta-0123456789")).status).toBe(404);
    expect((await json("/api/v1/devices", "test-key-beta-0123456789")).devices).toEqual([]);
  });
});
