/**
 * Which publish failures are dead-lettered: only those retrying cannot fix. A failure still
 * transient after the retries (a JetStream cluster electing a stream leader answers "no
 * responders" or nothing for seconds) means the broker is unavailable: 503, the client retries the
 * same records; dead-lettering it would keep an accepted reading out of the database.
 */
import { expect, test } from "bun:test";
import type { PlannedMessage } from "../../src/core/plan.ts";
import { BrokerUnavailable, publishAll } from "../../src/nats/publish.ts";
import { DLQ_PREFIX } from "../../src/nats/topology.ts";
import type { Broker } from "../../src/nats/connection.ts";
import { PublishError } from "../../src/nats/publisher.ts";

const OPTS = { stream: "TELEMETRY", dlqStream: "TELEMETRY_DLQ", timeoutMs: 100 };
const MESSAGE: PlannedMessage = {
  subject: "telemetry.v1.acme.0123456789abcdef",
  msgId: "m1",
  body: "{}",
  indexes: [0],
};

/** A connected broker whose telemetry publishes fail with `failure` and whose dead-letter publishes succeed. */
function fakeBroker(failure: () => Error) {
  const subjects: string[] = [];
  const publish = async (subject: string) => {
    subjects.push(subject);
    if (subject.startsWith(DLQ_PREFIX)) return { stream: OPTS.dlqStream, seq: 1, duplicate: false };
    throw failure();
  };
  const broker = { connected: true, publisher: { publish } } as unknown as Broker;
  return { broker, subjects };
}

test.each([
  ["no responders (no stream leader)", () => new PublishError("no stream answered (503 )", 503)],
  ["JetStream unavailable", () => new PublishError("JetStream system temporarily unavailable", 503)],
  ["ack timeout", () => new PublishError("timed out waiting for the JetStream ack", 408)],
  ["connection trouble", () => new Error("connection closed")],
])("still transient after the retries (%s): BrokerUnavailable (503), nothing dead-lettered", async (_, failure) => {
  const { broker, subjects } = fakeBroker(failure);
  await expect(publishAll(broker, [MESSAGE], OPTS)).rejects.toBeInstanceOf(BrokerUnavailable);
  expect(subjects).toEqual(Array(4).fill(MESSAGE.subject)); // the first attempt and 3 retries, same message
});

test("a failure retrying cannot fix (wrong stream, too large, …) is dead-lettered at once", async () => {
  const { broker, subjects } = fakeBroker(() => new PublishError("expected stream does not match", 400));
  const [outcome] = await publishAll(broker, [MESSAGE], OPTS);
  expect(outcome).toEqual({ status: "dead_lettered", error: "expected stream does not match" });
  expect(subjects).toEqual([MESSAGE.subject, `${DLQ_PREFIX}.acme`]);
});

test("the broker gone during the retries: BrokerUnavailable", async () => {
  let calls = 0;
  const broker = {
    get connected() {
      return calls < 2;
    },
    publisher: {
      publish: async () => {
        calls++;
        throw new PublishError("no stream answered (503 )", 503);
      },
    },
  } as unknown as Broker;
  await expect(publishAll(broker, [MESSAGE], OPTS)).rejects.toBeInstanceOf(BrokerUnavailable);
});

test("a duplicate PubAck without a sequence (a copy only staged by a leader) is not an acknowledgement", async () => {
  const acks = [
    { stream: OPTS.stream, seq: 0, duplicate: true },
    { stream: OPTS.stream, seq: 0, duplicate: true },
    { stream: OPTS.stream, seq: 42, duplicate: true },
  ];
  const broker = {
    connected: true,
    publisher: { publish: async () => acks.shift() ?? { stream: OPTS.stream, seq: 0, duplicate: true } },
  } as unknown as Broker;
  expect(await publishAll(broker, [MESSAGE], OPTS)).toEqual([{ status: "stored", duplicate: false }]); // stored once a real sequence comes back
  await expect(publishAll(broker, [MESSAGE], OPTS)).rejects.toBeInstanceOf(BrokerUnavailable); // never: 503, never dead-lettered
});
