/** `telemetry quarantine list|show|replay|purge`: inspect and deal with messages that could not be processed. */
import { defineCommand } from "citty";
import type { Sql } from "../db/client.ts";
import { configOrExit, fail, settingArgs } from "./common.ts";
import { withBroker, withDatabase } from "./services.ts";

const common = settingArgs(["databaseUrl", "natsUrl", "dataDir", "logLevel"]);
const json = { json: { type: "boolean", description: "Print JSON" } } as const;
const out = (asJson: boolean | undefined, value: unknown, text: () => string) =>
  process.stdout.write(`${asJson ? JSON.stringify(value, null, 2) : text()}\n`);

function selection(sql: Sql, args: { id?: string; all?: boolean; source?: string; before?: string }) {
  if (args.id) return sql`id = ${Number(args.id)}`;
  if (!args.all && !args.before) throw new Error("say which: an id, --all, or --before <time>");
  return sql`TRUE ${args.source ? sql`AND source = ${args.source}` : sql``} ${args.before ? sql`AND created_at < ${new Date(args.before).toISOString()}::timestamptz` : sql``}`;
}

const list = defineCommand({
  meta: { name: "list", description: "List quarantined messages, newest first" },
  args: {
    ...common,
    ...json,
    source: { type: "string", description: "writer, evaluator, mqtt, osmand or owntracks" },
    limit: { type: "string", description: "How many (default 50)" },
  },
  async run({ args }) {
    const config = configOrExit(args);
    await withDatabase(config, async (sql) => {
      const rows = await sql`
        SELECT id, source, subject, stream_seq, reason, created_at, length(payload) AS bytes FROM quarantine
        ${args.source ? sql`WHERE source = ${args.source}` : sql``}
        ORDER BY id DESC LIMIT ${Number(args.limit ?? 50)}`;
      out(args.json, rows, () =>
        rows.length === 0
          ? "quarantine is empty"
          : rows
              .map(
                (r) =>
                  `${r.id}\t${r.created_at.toISOString()}\t${r.source}\tseq ${r.stream_seq}\t${r.bytes} B\t${r.reason}`,
              )
              .join("\n"),
      );
    }).catch(fail);
  },
});

const show = defineCommand({
  meta: { name: "show", description: "Show one quarantined message with its payload" },
  args: { ...common, ...json, id: { type: "positional", description: "Quarantine id", required: true } },
  async run({ args }) {
    const config = configOrExit(args);
    await withDatabase(config, async (sql) => {
      const [row] = await sql`SELECT * FROM quarantine WHERE id = ${Number(args.id)}`;
      if (!row) throw new Error(`no quarantined message ${args.id}`);
      out(args.json, row, () =>
        Object.entries(row)
          .map(([k, v]) => `${k}: ${v instanceof Date ? v.toISOString() : v}`)
          .join("\n"),
      );
    }).catch(fail);
  },
});

const replay = defineCommand({
  meta: {
    name: "replay",
    description:
      "Publish quarantined messages again to their original subject (after fixing the cause), then remove them",
  },
  args: {
    ...common,
    id: { type: "positional", description: "Quarantine id (or use --all)", required: false },
    all: { type: "boolean", description: "Every quarantined message" },
    source: { type: "string", description: "Only this source" },
  },
  async run({ args }) {
    const config = configOrExit(args);
    await withDatabase(config, (sql) =>
      withBroker(config, async (broker) => {
        // osmand/owntracks rows record a refused tracker device, not a broker message: nothing to
        // publish (register the device; the app's own retry brings the reading).
        const rows =
          await sql`SELECT id, subject, payload FROM quarantine WHERE ${selection(sql, args)} AND stream_seq IS NOT NULL ORDER BY id`;
        for (const r of rows) {
          // A new message id: the original was stored (and deduplicated) long ago; event ids keep rows unique.
          await broker.js.publish(r.subject, r.payload, { msgID: `quarantine-replay-${r.id}-${Date.now()}` });
          await sql`DELETE FROM quarantine WHERE id = ${r.id}`;
        }
        process.stdout.write(`replayed ${rows.length} message(s)\n`);
      }),
    ).catch(fail);
  },
});

const purge = defineCommand({
  meta: { name: "purge", description: "Delete quarantined messages" },
  args: {
    ...common,
    id: { type: "positional", description: "Quarantine id (or use --all / --before)", required: false },
    all: { type: "boolean", description: "Every quarantined message" },
    before: { type: "string", description: "Only those quarantined before this RFC 3339 time" },
    source: { type: "string", description: "Only this source" },
  },
  async run({ args }) {
    const config = configOrExit(args);
    await withDatabase(config, async (sql) => {
      const result = await sql`DELETE FROM quarantine WHERE ${selection(sql, args)}`;
      process.stdout.write(`purged ${result.count} message(s)\n`);
    }).catch(fail);
  },
});

export const quarantine = defineCommand({
  meta: { name: "quarantine", description: "Messages the writer or evaluator could never process" },
  subCommands: { list, show, replay, purge },
});
