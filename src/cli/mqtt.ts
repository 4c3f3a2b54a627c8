/**
 * `telemetry mqtt users [--out FILE]`: the nats-server `authorization { users = [...] }` block of
 * the key store's MQTT users (what the supervised nats-server gets), for an operator running
 * their own nats-server (NATS_URL) to include. Passwords are the keys' bcrypt hashes: no key is
 * ever printed. The internal user of the supervised server (a public password, fit only for a
 * loopback port) is left out; `--internal-user` with `--internal-password-hash` adds a user for
 * telemetry's own connections instead.
 */
import { defineCommand } from "citty";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { loadMqttKeys } from "../mqtt/sync.ts";
import { isBcrypt, renderUsers } from "../core/mqtt-users.ts";
import { fail } from "./common.ts";
import { onStore, storeSettings } from "./tenants.ts";

const HEADER = [
  "# nats-server users for telemetry's MQTT devices, from the key store (telemetry mqtt users).",
  "# One user per active key of an active tenant: username = the key's prefix, password = bcrypt of the key,",
  "# MQTT connections only, publish only to its tenant's device topics. Regenerate after key or tenant changes,",
  "# then reload nats-server (nats-server --signal reload, or SIGHUP).",
];
const NO_INTERNAL = [
  "# No user for telemetry's own connections is in this list: with an authorization block every connection needs one.",
  "# Regenerate with --internal-user NAME --internal-password-hash '<bcrypt>' (nats server passwd makes one) and give",
  "# telemetry NATS_URL=nats://NAME:PASSWORD@host:4222, or add that user to this list yourself.",
];

const users = defineCommand({
  meta: {
    name: "users",
    description:
      "Print the nats-server authorization block of the MQTT users (bcrypt hashes, never keys), for your own nats-server",
  },
  args: {
    ...storeSettings,
    out: { type: "string", description: "Write it to this file (mode 0600) instead of printing it", valueHint: "file" },
    "internal-user": {
      type: "string",
      description: "Add a user for telemetry's own connections (full permissions, standard NATS connections only)",
      valueHint: "name",
    },
    "internal-password-hash": {
      type: "string",
      description: "Its password as a bcrypt hash ($2a$...; nats server passwd)",
      valueHint: "bcrypt",
    },
  },
  async run({ args }) {
    const user = args["internal-user"];
    const hash = args["internal-password-hash"];
    if ((user === undefined) !== (hash === undefined))
      fail(new Error("--internal-user and --internal-password-hash go together"));
    if (hash !== undefined && !isBcrypt(hash))
      fail(new Error("--internal-password-hash must be a bcrypt hash ($2a$11$...), not a password"));
    await onStore(args, async (sql) => {
      const internal = user !== undefined && hash !== undefined ? { user, password: hash } : null;
      const text = renderUsers(await loadMqttKeys(sql), {
        internal,
        header: [...HEADER, ...(internal ? [] : NO_INTERNAL)].join("\n"),
      });
      if (!args.out) {
        process.stdout.write(text);
        return;
      }
      const tmp = `${args.out}.tmp`;
      rmSync(tmp, { force: true }); // a mode applies only to a new file
      writeFileSync(tmp, text, { mode: 0o600 });
      renameSync(tmp, args.out);
      process.stderr.write(`wrote ${args.out} (${text.split("\n").filter((l) => l.includes("user:")).length} users)\n`);
    });
  },
});

export const mqtt = defineCommand({
  meta: { name: "mqtt", description: "MQTT ingest: nats-server users for your own nats-server" },
  subCommands: { users },
});
