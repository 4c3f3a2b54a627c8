/** `telemetry dlq list|replay|purge`: the dead-letter stream (see replay/dlq.ts). */
import { defineCommand } from "citty";
import { dlqStream } from "../nats/topology.ts";
import { purgeDeadLetters, readDeadLetters, replayDeadLetters } from "../replay/dlq.ts";
import { configOrExit, fail, settingArgs } from "./common.ts";
import { withBroker } from "./services.ts";

const common = settingArgs(["natsUrl", "dataDir", "streamName", "logLevel"]);
const seqArg = {
  seq: { type: "positional", description: "Sequence of one dead letter (or use --all)", required: false },
} as const;
const all = { all: { type: "boolean", description: "Every dead letter" } } as const;

function which(args: { seq?: string; all?: boolean }): number | undefined {
  if (args.seq !== undefined) {
    const n = Number(args.seq);
    if (!Number.isInteger(n) || n < 1) throw new Error(`not a sequence: ${args.seq}`);
    return n;
  }
  if (!args.all) throw new Error("say which: a sequence, or --all");
  return undefined;
}

const list = defineCommand({
  meta: { name: "list", description: "Dead letters, oldest first: sequence, time, subject, readings, failure" },
  args: {
    ...common,
    json: { type: "boolean", description: "Print JSON" },
    limit: { type: "string", description: "How many (default 100)" },
  },
  async run({ args }) {
    const config = configOrExit(args);
    await withBroker(config, async (broker) => {
      const letters = await readDeadLetters(broker, dlqStream(config.streamName), { limit: Number(args.limit ?? 100) });
      const rows = letters.map(({ body: _, ...d }) => d);
      process.stdout.write(
        `${
          args.json
            ? JSON.stringify(rows, null, 2)
            : rows.length === 0
              ? "no dead letters"
              : rows
                  .map((d) => `${d.seq}\t${d.time}\t${d.subject}\t${d.readings ?? "?"} readings\t${d.failure}`)
                  .join("\n")
        }\n`,
      );
    }).catch(fail);
  },
});

const replay = defineCommand({
  meta: {
    name: "replay",
    description: "Publish dead letters to the telemetry stream again (after fixing the cause), then delete them",
  },
  args: { ...common, ...seqArg, ...all },
  async run({ args }) {
    const config = configOrExit(args);
    await withBroker(config, async (broker) => {
      const dlq = dlqStream(config.streamName);
      const seq = which(args);
      const letters = await readDeadLetters(broker, dlq, seq === undefined ? {} : { seq });
      const r = await replayDeadLetters(broker, { stream: config.streamName, dlqStream: dlq, letters });
      process.stdout.write(
        `replayed ${r.replayed} dead letter(s)${r.failed.length ? `, ${r.failed.length} failed` : ""}\n`,
      );
      for (const f of r.failed) process.stderr.write(`telemetry: dead letter ${f.seq}: ${f.error}\n`);
      if (r.failed.length) process.exit(1);
    }).catch(fail);
  },
});

const purge = defineCommand({
  meta: { name: "purge", description: "Delete dead letters (their readings are then lost)" },
  args: { ...common, ...seqArg, ...all },
  async run({ args }) {
    const config = configOrExit(args);
    await withBroker(config, async (broker) => {
      const n = await purgeDeadLetters(broker, dlqStream(config.streamName), which(args));
      process.stdout.write(`purged ${n} dead letter(s)\n`);
    }).catch(fail);
  },
});

export const dlq = defineCommand({
  meta: { name: "dlq", description: "Dead letters: broker messages ingest could not store while the broker was up" },
  subCommands: { list, replay, purge },
});
