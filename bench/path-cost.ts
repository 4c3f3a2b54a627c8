/**
 * CPU per reading of the server's batched per-reading code with no I/O: the bench's NDJSON
 * requests (bench/data.ts) through parse → normalize + event ids → plan + envelopes (ingest), then
 * the envelopes' decode → rows → binary COPY buffer → rollups → devices → committed-batch summary,
 * its events and their decode (writer, evaluator), in the writer's batch size. Garbage collection
 * is included (it runs in the timed loop). A/B of two checkouts in the same process, alternating:
 *   bun bench/path-cost.ts [readings=200000] [rounds=5] [other checkout's root]
 * Prints ns per reading for each round and checkout. Decision 0530.
 */
import { join, resolve } from "node:path";
import { requestBody, TENANT } from "./data.ts";

const [readingsArg = "200000", roundsArg = "5", other] = process.argv.slice(2);
const readings = Number(readingsArg);
const rounds = Number(roundsArg);
const BATCH = 2_000;

interface Tree {
  name: string;
  /** The modules of one checkout (two checkouts, same shapes). */
  m: Record<string, any>;
}

async function load(root: string, name: string): Promise<Tree> {
  const at = (p: string) => import(join(root, p));
  const m = Object.assign(
    {},
    await at("src/ingest/parse.ts"),
    await at("src/core/record.ts"),
    await at("src/core/plan.ts"),
    await at("src/core/envelope.ts"),
    await at("src/writer/rows.ts"),
    await at("src/writer/copy-binary.ts"),
    await at("src/core/committed.ts"),
  );
  return { name, m };
}

const bodies: string[] = [];
for (let n = 0; n * 250 < readings; n++) bodies.push(requestBody("pc", n));
const now = Date.UTC(2026, 0, 1) + readings * 1000;

function ingest(t: Tree): string[] {
  const out: string[] = [];
  for (const body of bodies) {
    const items = t.m.parseBody(body, "ndjson", 10_000);
    const valid = [];
    for (const item of items) {
      const r = t.m.normalizeRecord(item.value, { tenant: TENANT, nowMs: now, maxFutureMs: 3_600_000 });
      if (r.ok) valid.push({ index: item.index, reading: r.reading });
    }
    const plan = t.m.planMessages(valid, { maxRecords: 100, maxBytes: 256 * 1024, receivedAt: now });
    for (const msg of plan.messages) out.push(msg.body);
  }
  return out;
}

function writer(t: Tree, messages: string[]): number {
  let bytes = 0;
  for (let i = 0; i < messages.length; ) {
    const envelopes = [];
    let n = 0;
    while (i < messages.length && n < BATCH) {
      const e = t.m.decodeEnvelope(messages[i++]);
      envelopes.push(e);
      n += e.readings.length;
    }
    const rows = t.m.batchRows(envelopes);
    bytes += t.m.copyBinary(rows).length;
    bytes += t.m.rollupsOf(rows).length + t.m.summarizeDevices(envelopes).length;
    for (const b of t.m.summarizeCommitted(envelopes)) {
      const events = t.m.committedEvents
        ? t.m.committedEvents(b, 512 * 1024)
        : t.m.splitCommitted(b, 512 * 1024).map((x: unknown) => ({
            batch: x,
            body: t.m.encodeCommitted(x),
            msgId: t.m.committedMessageId(x),
          }));
      for (const e of events) bytes += t.m.decodeCommitted(e.body).series.length + e.msgId.length;
    }
  }
  return bytes;
}

const trees = [await load(resolve(import.meta.dir, ".."), "this checkout")];
if (other) trees.push(await load(resolve(other), other));
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000; // ns
};
for (let round = 0; round <= rounds; round++) {
  for (const t of round % 2 ? trees : [...trees].reverse()) {
    Bun.gc(true);
    const c0 = cpu();
    const messages = ingest(t);
    const c1 = cpu();
    writer(t, messages);
    const c2 = cpu();
    if (round === 0) continue; // warm-up
    const total = bodies.length * 250;
    console.log(
      `round ${round} ${t.name}: ingest ${((c1 - c0) / total).toFixed(0)} ns, writer+committed ${((c2 - c1) / total).toFixed(0)} ns per reading`,
    );
  }
}
