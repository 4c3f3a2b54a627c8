/**
 * The acked publisher against a real nats-server: every publish resolves on its own stream
 * PubAck (sequence, duplicate by message id) whether it left at once or was held for another's
 * PubAck, and single publishes arriving one per event-loop turn while others await their PubAck
 * share socket writes (decision 0545) instead of one write each.
 */
import { expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { AckedPublisher } from "../../src/nats/publisher.ts";
import { startNats } from "../helpers/services.ts";

const STREAM = "PUBTEST";

async function setup(nats: { url: string }) {
  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["pubtest.>"] });
  // Count the writes that carry publishes (not PINGs or SUBs): the client hands each to its transport's send.
  const transport = (nc as unknown as { protocol: { transport: { send(frame: Uint8Array): void } } }).protocol
    .transport;
  const send = transport.send.bind(transport);
  const writes = { n: 0 };
  const text = new TextDecoder();
  transport.send = (frame) => {
    if (text.decode(frame).includes("HPUB ")) writes.n++;
    send(frame);
  };
  return { nc, jsm, writes };
}

test("publishes one per turn, under load: each resolves on its PubAck, and they share writes", async () => {
  await using nats = await startNats();
  const { nc, jsm, writes } = await setup(nats);
  const publisher = new AckedPublisher(nc, 5_000);
  try {
    const n = 300;
    const acks: Promise<{ seq: number; duplicate: boolean }>[] = [];
    const before = writes.n;
    for (let i = 0; i < n; i++) {
      acks.push(publisher.publish(`pubtest.${i % 7}`, `{"i":${i}}`, { msgId: `m${i}`, expectStream: STREAM }));
      await new Promise((r) => setImmediate(r)); // the next request comes in a later turn
    }
    const got = await Promise.all(acks);
    const sent = writes.n - before;
    expect(got.map((a) => a.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(got.every((a) => !a.duplicate)).toBe(true);
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(n);
    // One write per publish before the hold; with it, one per PubAck round trip.
    expect(sent).toBeLessThan(n / 2);

    // Held or not, the message id still de-duplicates: the same ids again are duplicates, nothing stored.
    const again = await Promise.all(
      [0, 1, 2].map((i) => publisher.publish(`pubtest.${i}`, "{}", { msgId: `m${i}`, expectStream: STREAM })),
    );
    expect(again.map((a) => a.duplicate)).toEqual([true, true, true]);
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(n);
  } finally {
    publisher.close();
    await nc.close();
  }
});

test("a lone publish is not held: it leaves in the turn it was made", async () => {
  await using nats = await startNats();
  const { nc, writes } = await setup(nats);
  const publisher = new AckedPublisher(nc, 5_000);
  try {
    for (let i = 0; i < 5; i++) {
      const before = writes.n;
      const started = performance.now();
      const ack = await publisher.publish("pubtest.one", "{}", { msgId: `lone${i}`, expectStream: STREAM });
      expect(ack.seq).toBe(i + 1);
      expect(writes.n - before).toBe(1);
      expect(performance.now() - started).toBeLessThan(1_000);
    }
  } finally {
    publisher.close();
    await nc.close();
  }
});
