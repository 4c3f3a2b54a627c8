#!/usr/bin/env bun
/** telemetry: one executable for every role and every operator command. */
import { defineCommand, runMain } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { config } from "./config.ts";
import { dlq } from "./dlq.ts";
import { exportCommand } from "./export.ts";
import { grafana } from "./grafana.ts";
import { keys } from "./keys.ts";
import { migrate } from "./migrate.ts";
import { migrateTo } from "./migrate-to.ts";
import { mqtt } from "./mqtt.ts";
import { quarantine } from "./quarantine.ts";
import { replay } from "./replay.ts";
import { routes } from "./routes.ts";
import { serve } from "./serve.ts";
import { status } from "./status.ts";
import { tenants } from "./tenants.ts";
import { showUsage } from "./usage.ts";
import { licenses, version } from "./version.ts";

const main = defineCommand({
  meta: {
    name: "telemetry",
    version: pkg.version,
    description: "Self-hosted telemetry server: HTTP ingest -> NATS JetStream -> PostgreSQL/TimescaleDB",
  },
  subCommands: {
    serve,
    migrate,
    "migrate-to": migrateTo,
    status,
    replay,
    quarantine,
    dlq,
    export: exportCommand,
    grafana,
    routes,
    tenants,
    keys,
    mqtt,
    config,
    version,
    licenses,
  },
});

await runMain(main, { showUsage: showUsage(main) });
