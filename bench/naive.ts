/**
 * The naive baseline the server is compared with, built from the same libraries and run as its
 * own process: HTTP NDJSON -> the same parsing and normalization -> one `js.publish` per record
 * (Nats-Msg-Id = event id, all awaited before 202) -> a plain durable consumer (async iterator)
 * -> one unnest INSERT … ON CONFLICT DO NOTHING per batch of 500 messages, acked after COMMIT.
 *   bun bench/naive.ts <port> <natsUrl> <databaseUrl>
 * The database must hold the `readings` table (the bench migrates a database for it).
 */
import { AckPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { normalizeRecord, type Reading } from "../src/core/record.ts";
import { createSql } from "../src/db/client.ts";
import { ensureStream } from "../src/nats/stream.ts";
import { TENANT } from "./data.ts";

const [port, natsUrl, databaseUrl] = process.argv.slice(2) as [string, string, string];
const STREAM = "NAIVE";
const nc = await connect({ servers: natsUrl });
const jsm = await jetstreamManager(nc);
await ensureStream(jsm, {
  name: STREAM,
  subjects: ["naive.>"],
  maxAgeMs: 3_600_000,
  duplicateWindowMs: 120_000,
  replicas: 1,
});
await jsm.consumers.add(STREAM, { durable_name: "naive", ack_policy: AckPolicy.Explicit, max_ack_pending: 2_000 });
const js = jetstream(nc);
const sql = createSql(databaseUrl, { max: 1, name: "naive" });

Bun.serve({
  port: Number(port),
  hostname: "127.0.0.1",
  async fetch(req) {
    const now = Date.now();
    const body = await req.text();
    if (body === "") return new Response("up"); // the bench's readiness probe
    const readings: Reading[] = [];
    for (const line of body.split("\n")) {
      const r = normalizeRecord(JSON.parse(line), { tenant: TENANT, nowMs: now, maxFutureMs: 3_600_000 });
      if (r.ok) readings.push(r.reading);
    }
    await Promise.all(
      readings.map((r) => js.publish(`naive.${TENANT}`, JSON.stringify({ ...r, rx: now }), { msgID: r.eventId })),
    );
    return Response.json({ accepted: readings.length }, { status: 202 });
  },
});

const consumer = await js.consumers.get(STREAM, "naive");
let held: JsMsg[] = [];
const flush = async () => {
  const msgs = held;
  held = [];
  const rs = msgs.map((m) => m.json<Reading & { rx: number }>());
  const iso = (ms: number) => new Date(ms).toISOString();
  await sql`
    INSERT INTO readings (tenant, device_id, ts, event_id, lat, lon, metrics, attributes, received_at)
    SELECT tenant, device_id, ts::timestamptz, event_id::uuid, lat, lon, m::jsonb, a::jsonb, rx::timestamptz
    FROM unnest(${rs.map((r) => r.tenant)}::text[], ${rs.map((r) => r.deviceId)}::text[], ${rs.map((r) => iso(r.ts))}::text[], ${rs.map((r) => r.eventId)}::text[],
                ${rs.map((r) => r.lat)}::float8[], ${rs.map((r) => r.lon)}::float8[], ${rs.map((r) => (r.metrics ? JSON.stringify(r.metrics) : null))}::text[],
                ${rs.map((r) => (r.attributes ? JSON.stringify(r.attributes) : null))}::text[], ${rs.map((r) => iso(r.rx))}::text[])
         AS u(tenant, device_id, ts, event_id, lat, lon, m, a, rx)
    ON CONFLICT DO NOTHING`;
  for (const m of msgs) m.ack();
};
setInterval(() => void (held.length > 0 && flush()), 200); // a partial batch waits at most this long
console.log("ready");
for await (const m of await consumer.consume()) {
  held.push(m);
  if (held.length >= 500) await flush();
}
