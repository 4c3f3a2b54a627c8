/** Waits until the writer's consumer has taken and acked every message of the stream (nothing more will be written). */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { DURABLE } from "../../src/nats/topology.ts";
import { check } from "./services.ts";

export async function writerDrained(natsUrl: string, stream = "TELEMETRY"): Promise<void> {
  const nc = await connect({ servers: natsUrl, reconnect: false, timeout: 2_000 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    await check(
      async () => {
        const info = await jsm.consumers.info(stream, DURABLE.writer);
        return info.num_pending + info.num_ack_pending === 0;
      },
      { what: "writer consumer drained" },
    );
  } finally {
    await nc.close();
  }
}
