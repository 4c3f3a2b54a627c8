/** `telemetry replay --from …`: re-apply events from the stream through the live code paths. */
import { defineCommand } from "citty";
import { ReplayError, runReplay, type ReplayProgress, type Target } from "../replay/replay.ts";
import { parsePoint } from "../replay/range.ts";
import { configOrExit, settingArgs } from "./common.ts";
import { progressReporter } from "./progress.ts";
import { withBroker, withDatabase } from "./services.ts";

export const replay = defineCommand({
  meta: {
    name: "replay",
    description:
      "Re-apply events from the telemetry stream: rows are written idempotently, alerts re-evaluated without duplicates",
  },
  args: {
    ...settingArgs(["databaseUrl", "natsUrl", "dataDir", "streamName", "logLevel"]),
    from: {
      type: "string",
      required: true,
      description: "Start: RFC 3339 time, a duration ago (6h), or a stream sequence",
    },
    to: { type: "string", description: "End (same forms); default: the stream's last message when the replay starts" },
    tenant: { type: "string", description: "Only this tenant" },
    device: { type: "string", description: "Only this device (needs --tenant)" },
    target: {
      type: "string",
      default: "writer,evaluator",
      description: "What to re-apply: writer, evaluator, or both",
    },
    "dry-run": { type: "boolean", description: "Report what would change; change nothing" },
    rate: { type: "string", description: "At most this many readings per second (e.g. 5000)" },
    "batch-size": { type: "string", default: "1000", description: "Readings per database batch" },
  },
  async run({ args }) {
    const config = configOrExit(args);
    const now = Date.now();
    const problems: string[] = [];
    const from = parsePoint(args.from, now);
    const to = args.to === undefined ? undefined : parsePoint(args.to, now);
    if ("error" in from) problems.push(`--from: ${from.error}`);
    if (to && "error" in to) problems.push(`--to: ${to.error}`);
    const targets = new Set(
      String(args.target)
        .split(",")
        .map((t) => t.trim()),
    );
    if ([...targets].some((t) => t !== "writer" && t !== "evaluator") || targets.size === 0)
      problems.push("--target: must be writer, evaluator or writer,evaluator");
    const rate = args.rate === undefined ? undefined : Number(args.rate);
    if (rate !== undefined && !(rate > 0)) problems.push("--rate: must be a positive number of readings per second");
    if (problems.length) {
      for (const p of problems) process.stderr.write(`telemetry: ${p}\n`);
      process.exit(2);
    }
    const report = progressReporter("replay");
    try {
      const summary = await withDatabase(config, (sql) =>
        withBroker(config, (broker) =>
          runReplay(
            { broker, sql },
            {
              stream: config.streamName,
              from: from as Exclude<typeof from, { error: string }>,
              to: to as Exclude<NonNullable<typeof to>, { error: string }> | undefined,
              tenant: args.tenant,
              device: args.device,
              targets: targets as Set<Target>,
              dryRun: Boolean(args["dry-run"]),
              rate,
              batchSize: Number(args["batch-size"]),
              maxLatenessMs: config.alertMaxLateness,
              onProgress: (p: ReplayProgress) => report.update(p.messages, p.totalMessages, p.readings),
              onNotice: (message: string) => process.stderr.write(`telemetry: ${message}\n`),
            },
          ),
        ),
      );
      report.done();
      process.stdout.write(
        `${[
          `${summary.dryRun ? "dry run: " : ""}events read: ${summary.messages} (sequences ${summary.firstSeq ?? "-"}..${summary.lastSeq ?? "-"}), readings: ${summary.readings}`,
          targets.has("writer")
            ? `rows ${summary.dryRun ? "that would be " : ""}inserted: ${summary.inserted}, rows already present: ${summary.present}`
            : "",
          targets.has("evaluator")
            ? `alerts ${summary.dryRun ? "that would be " : ""}created: ${summary.alertsCreated}`
            : "",
          `errors: ${summary.errors}`,
        ]
          .filter(Boolean)
          .join("\n")}\n`,
      );
      process.exit(summary.errors > 0 ? 1 : 0);
    } catch (err) {
      report.done();
      process.stderr.write(`telemetry: ${(err as Error).message}\n`);
      process.exit(err instanceof ReplayError ? 2 : 1);
    }
  },
});
