/** `telemetry version [--json]` and `telemetry licenses`: what this executable is and carries. */
import { defineCommand } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { embedded } from "../embedded/bundle.ts";
import { describeNatsServer, type NatsServerInfo } from "../embedded/nats-binary.ts";
import { configOrExit, settingArgs } from "./common.ts";

interface Versions {
  telemetry: string;
  bun: string;
  nats_server: (NatsServerInfo & { error?: never }) | { error: string };
}

function natsLine(n: Versions["nats_server"]): string {
  if ("error" in n) return `nats-server  not available: ${n.error}`;
  const where = n.source === "embedded" ? `embedded, sha256 ${n.sha256}, built from ${n.path}` : n.path;
  return `nats-server  ${n.version ?? "(its --version said no version)"} (${where})`;
}

export const version = defineCommand({
  meta: {
    name: "version",
    description:
      "Print the versions of telemetry, Bun and the nats-server it runs (the embedded one, or the one TELEMETRY_NATS_SERVER_BIN picks)",
  },
  args: { json: { type: "boolean", description: "Print JSON" }, ...settingArgs(["natsServerBin"]) },
  run({ args }) {
    const config = configOrExit(args);
    let nats: Versions["nats_server"];
    try {
      nats = describeNatsServer(config.natsServerBin);
    } catch (err) {
      nats = { error: (err as Error).message };
    }
    const v: Versions = { telemetry: pkg.version, bun: Bun.version, nats_server: nats };
    const text = args.json
      ? JSON.stringify(v, null, 2)
      : [`telemetry    ${v.telemetry}`, `bun          ${v.bun}`, natsLine(nats)].join("\n");
    process.stdout.write(`${text}\n`);
  },
});

export const licenses = defineCommand({
  meta: {
    name: "licenses",
    description: "Print the license texts of what this executable embeds (nats-server, the npm packages in its bundle)",
  },
  async run() {
    const path = embedded().licensesPath;
    if (!path) {
      process.stdout.write(
        "This telemetry runs from source (or was built without its license file): it embeds nothing; build the executable with `npm run build`.\n",
      );
      return;
    }
    // `telemetry licenses | head` closes the pipe early: that is not an error
    process.stdout.on("error", (err: NodeJS.ErrnoException) => process.exit(err.code === "EPIPE" ? 0 : 1));
    process.stdout.write(await Bun.file(path).text());
  },
});
