import { defineCommand } from "citty";
import { ROLES } from "../config/schema.ts";
import { flushLogs, logger } from "../lib/log.ts";
import { reexecWithJscRamSize } from "../server/jsc-heap.ts";
import { startServer } from "../server/start.ts";
import { configOrExit, fail, settingArgs } from "./common.ts";

export const serve = defineCommand({
  meta: { name: "serve", description: `Run the server roles (${ROLES.join(", ")}) in this process` },
  args: settingArgs(),
  async run({ args }) {
    const config = configOrExit(args);
    // Before anything starts: the process image is replaced (same pid) unless the variable is set.
    reexecWithJscRamSize(config.jscRamSize);
    const log = logger("cli");
    // Log what would otherwise end the process silently, then end it: state after an unknown error
    // is not trusted, and nothing is lost (unacked messages are redelivered after a restart).
    const fatal = (kind: string) => (err: unknown) => {
      log.fatal({ err: (err as Error)?.message ?? String(err), stack: (err as Error)?.stack }, kind);
      process.exit(70);
    };
    process.on("uncaughtException", fatal("uncaught exception"));
    process.on("unhandledRejection", fatal("unhandled promise rejection"));
    const server = await startServer(config).catch(fail);
    if (server.generatedKey) {
      const { tenant, key } = server.generatedKey;
      // Shown once, on the terminal only (not through the logger); the key store keeps only its SHA-256.
      process.stdout.write(
        `\n  No API keys configured: generated one for tenant "${tenant}" (shown only now; only its hash is stored):\n\n` +
          `    ${key}\n\n  Try:\n    curl -X POST ${server.url}/api/v1/telemetry -H 'Authorization: Bearer ${key}' \\\n` +
          `      -H 'Content-Type: application/json' -d '{"device_id":"truck-1","ts":"${new Date().toISOString()}","metrics":{"temp":21.5}}'\n\n`,
      );
    }
    let signals = 0;
    const onSignal = (signal: string) => {
      signals++;
      if (signals > 1) {
        log.warn({ signal }, "second signal: exiting now");
        process.exit(130);
      }
      log.info({ signal }, "shutting down");
      const force = setTimeout(() => {
        log.error({ timeoutMs: config.shutdownTimeout }, "shutdown timed out; exiting");
        process.exit(1);
      }, config.shutdownTimeout);
      server.stop().then(async () => {
        clearTimeout(force);
        await flushLogs();
        process.exit(0);
      });
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
    await new Promise(() => {});
  },
});
