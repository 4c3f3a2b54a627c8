/**
 * The acked publisher against a real nats-server, publishes arriving one per event-loop turn (as
 * single-record requests do): each resolves on its own stream PubAck, and the headers it builds
 * (appended to a fresh set, decision 0545) still carry the message id JetStream de-duplicates by.
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
  return { nc, jsm };
}

test("publishes one per turn: each resolves on its PubAck; the message id de-duplicates", async () => {
  await using nats = await startNats();
  const { nc, jsm } = await setup(nats);
  const publisher = new AckedPublisher(nc, 5_000);
  try {
    const n = 300;
    const acks: Promise<{ seq: number; duplicate: boolean }>[] = [];
    for (let i = 0; i < n; i++) {
      acks.push(publisher.publish(`pubtest.${i % 7}`, `{"i":${i}}`, { msgId: `m${i}`, expectStream: STREAM }));
      await new Promise((r) => setImmediate(r)); // the next request comes in a later turn
    }
    const got = await Promise.all(acks);
    expect(got.map((a) => a.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(got.every((a) => !a.duplicate)).toBe(true);
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(n);

    // Held or not, the message id still de-duplicates: the same ids again are duplicates, nothing stored.
    const again = await Promise.all(
      [0, 1, 2].map((i) => publisher.publish(`pubtest.${i}`, "{}", { msgId: `m${i}`, expectStream: STREAM })),
    );
    expect(again.map((a) => a.duplicate)).toEqual([true, true, true]);
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(n);

    // And the expected-stream header: a publish naming another stream is refused, nothing stored.
    const wrong = await publisher.publish("pubtest.0", "{}", { msgId: "w1", expectStream: "ELSEWHERE" }).then(
      () => null,
      (err: Error) => err,
    );
    expect(wrong?.message).toContain("expected stream does not match");
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(n);
  } finally {
    publisher.close();
    await nc.close();
  }
});
