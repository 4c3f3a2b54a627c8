/**
 * The writer's binary COPY stores exactly what the upsert path (INSERT … FROM unnest of text)
 * stores, for awkward values: timestamps before 1970 and 2000 and with milliseconds, negative and
 * tiny coordinates, no location, unicode and control characters and backslashes in ids and
 * attributes, big metric values — read back from a real PostgreSQL as text and compared.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Envelope } from "../../src/core/envelope.ts";
import { createSql, type Sql } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { writeBatch } from "../../src/writer/sink.ts";
import { check, freshDatabase } from "../helpers/services.ts";

let copy: Sql;
let upsert: Sql;
const MIGRATE = { timescale: "off", retentionMs: null, compressAfterMs: 86_400_000 } as const;

beforeAll(async () => {
  copy = createSql(await freshDatabase("wcopy"), { max: 1, name: "test" });
  upsert = createSql(await freshDatabase("wupsert"), { max: 1, name: "test" });
  await migrate(copy, MIGRATE);
  await migrate(upsert, MIGRATE);
}, 60_000);

afterAll(async () => {
  await copy?.end();
  await upsert?.end();
});

let n = 0;
const uuid = () => `0190a5b2-7c3d-7e4f-8a9b-${(++n).toString(16).padStart(12, "0")}`;

function envelope(
  deviceId: string,
  receivedAt: number,
  readings: Array<Partial<Envelope["readings"][number]>>,
): Envelope {
  return {
    tenant: "acme",
    deviceId,
    receivedAt,
    readings: readings.map((r) => ({
      eventId: uuid(),
      tenant: "acme",
      deviceId,
      ts: 0,
      lat: null,
      lon: null,
      metrics: null,
      attributes: null,
      ...r,
    })),
  };
}

const batch: Envelope[] = [
  envelope("plain-1", Date.UTC(2026, 11, 1, 12, 0, 0, 123), [
    { ts: Date.UTC(2026, 11, 1, 11, 59, 59, 999), lat: 52.520008, lon: 13.404954, metrics: { temp: 21.5, seq: 1 } },
    { ts: Date.UTC(2026, 11, 1, 12, 0, 0, 1), metrics: { temp: -40.125, big: 1.2345678901234567e150, tiny: 1.5e-100 } },
  ]),
  envelope("ünïcode-Gerät-🚚", Date.UTC(1999, 11, 31, 23, 59, 59, 999), [
    {
      ts: Date.UTC(1969, 6, 20, 20, 17, 40, 5),
      lat: -33.8688,
      lon: -151.2093,
      attributes: { note: 'a\\b\t"c"\n\u0001€' },
    },
    { ts: Date.UTC(2000, 0, 1), lat: 0, lon: -0.000001, attributes: { ok: true, n: null, k: 3 }, metrics: {} },
  ]),
];

const stored = (sql: Sql) => sql`
  SELECT tenant, device_id, ts::text AS ts, event_id::text AS event_id, lat, lon,
         metrics::text AS metrics, attributes::text AS attributes, received_at::text AS received_at
  FROM readings ORDER BY event_id`;

test("binary COPY and the upsert path store the same rows and rollups", async () => {
  const a = await writeBatch(copy, batch);
  const b = await writeBatch(upsert, batch, [], { prefer: "upsert" });
  expect(a).toMatchObject({ path: "copy", inserted: 4 });
  expect(b).toMatchObject({ path: "upsert", inserted: 4 });
  const copied = await stored(copy);
  expect(copied).toEqual(await stored(upsert));
  expect(copied.map((r) => r.ts)).toContain("1969-07-20 20:17:40.005+00");
  expect(copied.map((r) => r.device_id)).toContain("ünïcode-Gerät-🚚");
  const rollups = (sql: Sql) =>
    sql`SELECT device_id, metric, bucket::text, count, sum, sum_sq, min, max FROM readings_1m ORDER BY 1, 2, 3`;
  expect(await rollups(copy)).toEqual(await rollups(upsert));
  const devices = await copy`
    SELECT device_id, first_seen::text, last_seen::text, last_received_at::text, last_lat, last_lon, last_location_at::text
    FROM devices ORDER BY device_id`;
  expect([...devices]).toEqual([
    {
      device_id: "plain-1",
      first_seen: "2026-12-01 11:59:59.999+00",
      last_seen: "2026-12-01 12:00:00.001+00",
      last_received_at: "2026-12-01 12:00:00.123+00",
      last_lat: 52.520008,
      last_lon: 13.404954,
      last_location_at: "2026-12-01 11:59:59.999+00",
    },
    {
      device_id: "ünïcode-Gerät-🚚",
      first_seen: "1969-07-20 20:17:40.005+00",
      last_seen: "2000-01-01 00:00:00+00",
      last_received_at: "1999-12-31 23:59:59.999+00",
      last_lat: 0,
      last_lon: -0.000001,
      last_location_at: "2000-01-01 00:00:00+00",
    },
  ]);
});

test("a batch meeting a stored event goes the upsert way and adds only the new rows", async () => {
  const again = [
    ...batch,
    envelope("plain-2", Date.UTC(2026, 11, 1), [{ ts: Date.UTC(2026, 11, 1), metrics: { x: 1 } }]),
  ];
  const r = await writeBatch(copy, again);
  expect(r).toMatchObject({ path: "upsert", conflict: true, inserted: 1, readings: 5 });
  const [row] = await copy`SELECT count(*)::int AS n FROM readings`;
  expect(row!.n).toBe(5);
});

test("devices' pages keep room, so a batch's device updates are HOT (no new index entry)", async () => {
  const sql = createSql(await freshDatabase("whot"), { max: 1, name: "test" });
  try {
    await migrate(sql, MIGRATE);
    const ids = Array.from({ length: 1500 }, (_, i) => `hot-device-${i}`);
    const at = (minute: number) => Date.UTC(2026, 11, 2, 0, minute);
    for (const minute of [0, 1]) {
      const batch = ids.map((id) => envelope(id, at(minute), [{ ts: at(minute), lat: 52.5, lon: 13.4 }]));
      expect((await writeBatch(sql, batch)).inserted).toBe(ids.length);
    }
    // Without room on its page (fillfactor 100: the 1,500 rows fill ~20 pages), an update goes to
    // another page and adds a devices_pkey entry; a HOT update stays on its page.
    const stats = await check(
      async () => {
        const [row] =
          await sql`SELECT n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables WHERE relname = 'devices'`;
        return row!.upd === ids.length && row;
      },
      { what: "the devices' update counters" },
    );
    expect(stats.hot).toBe(ids.length);
    const [last] = await sql`SELECT count(*)::int AS n FROM devices WHERE last_seen = ${new Date(at(1))}`;
    expect(last!.n).toBe(ids.length);
  } finally {
    await sql.end();
  }
});
