/**
 * `telemetry grafana role|write` (docs/grafana.md): the read-only database role Grafana logs in
 * as, and the provisioning files of deploy/grafana with the database address filled in. The
 * password is read from a file and never printed, logged or written anywhere by these commands.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { defineCommand } from "citty";
import dashboard from "../../deploy/grafana/dashboards/telemetry-fleet.json" with { type: "json" };
import provider from "../../deploy/grafana/provisioning/dashboards/provider.yaml" with { type: "text" };
import datasource from "../../deploy/grafana/provisioning/datasources/telemetry.yaml" with { type: "text" };
import { ensureGrafanaRole, ROLE_NAME_PATTERN } from "../db/grafana-role.ts";
import { configOrExit, fail, settingArgs } from "./common.ts";
import { withDatabase } from "./services.ts";

const DEFAULT_ROLE = "telemetry_grafana";
const DEFAULT_PASSWORD_PATH = "/etc/grafana/telemetry-grafana.password";
const dbArgs = settingArgs(["databaseUrl", "dataDir", "logLevel"]);
const dbConfig = (args: Record<string, unknown>) =>
  configOrExit(Object.fromEntries(Object.keys(dbArgs).map((k) => [k, args[k] as string | undefined])));
const roleArg = { name: { type: "string", description: "Role name", default: DEFAULT_ROLE } } as const;

function readPassword(file: string): string {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  return text.replace(/\r?\n$/, "");
}

const role = defineCommand({
  meta: {
    name: "role",
    description: "Create (or update) the read-only role Grafana uses: SELECT on what the dashboard reads only",
  },
  args: {
    ...dbArgs,
    ...roleArg,
    "password-file": {
      type: "string",
      description: "File holding the role's password ('-' for stdin)",
      required: true,
    },
  },
  async run({ args }) {
    const config = dbConfig(args);
    try {
      const password = readPassword(args["password-file"]);
      const created = await withDatabase(config, (sql) => ensureGrafanaRole(sql, args.name, password));
      process.stdout.write(
        `${created ? "created" : "updated"} role ${args.name} (read-only; password from ${args["password-file"]})\n`,
      );
    } catch (err) {
      fail(err);
    }
  },
});

export interface GrafanaTarget {
  host: string;
  port: string;
  database: string;
  sslmode: string;
  user: string;
  passwordPath: string;
  timescaledb: boolean;
}

/** The three provisioning files (relative path -> content) for one database. */
export function grafanaFiles(t: GrafanaTarget): Record<string, string> {
  // The ${TELEMETRY_…} placeholders Grafana would expand from its environment, filled in here.
  const values: Record<string, string> = {
    TELEMETRY_DB_HOST: t.host,
    TELEMETRY_DB_PORT: t.port,
    TELEMETRY_GRAFANA_USER: t.user,
    TELEMETRY_DB_NAME: t.database,
    TELEMETRY_DB_SSLMODE: t.sslmode,
  };
  const ds = datasource
    .replace(/\$\{(TELEMETRY_[A-Z_]+)\}/g, (whole: string, name: string) => values[name] ?? whole)
    .replace("timescaledb: false", `timescaledb: ${t.timescaledb}`)
    .replace(`$__file{${DEFAULT_PASSWORD_PATH}}`, `$__file{${t.passwordPath}}`);
  return {
    "provisioning/datasources/telemetry.yaml": ds,
    "provisioning/dashboards/provider.yaml": provider,
    "dashboards/telemetry-fleet.json": `${JSON.stringify(dashboard, null, 2)}\n`,
  };
}

/** Host, port, database and sslmode of a postgres:// URL (no credentials). */
export function targetOf(url: string): Pick<GrafanaTarget, "host" | "port" | "database" | "sslmode"> {
  const u = new URL(url);
  if (u.searchParams.get("host"))
    throw new Error("a unix-socket database URL: give --database-url with a TCP address Grafana can reach");
  return {
    host: u.hostname,
    port: u.port || "5432",
    database: decodeURIComponent(u.pathname.slice(1)) || "postgres",
    sslmode: u.searchParams.get("sslmode") ?? "disable",
  };
}

const write = defineCommand({
  meta: { name: "write", description: "Write Grafana provisioning files for this database into a directory" },
  args: {
    ...dbArgs,
    ...roleArg,
    dir: { type: "positional", description: "Directory to write", required: true },
    "password-path": {
      type: "string",
      description: "Where Grafana reads the role's password (a file path on the Grafana host)",
      default: DEFAULT_PASSWORD_PATH,
    },
    timescaledb: { type: "string", description: "auto (ask the database), true or false", default: "auto" },
  },
  async run({ args }) {
    const config = dbConfig(args);
    try {
      if (!config.databaseUrl)
        throw new Error("give --database-url (or DATABASE_URL): the address Grafana connects to");
      if (!ROLE_NAME_PATTERN.test(args.name))
        throw new Error(`role name ${JSON.stringify(args.name)}: 1-63 of a-z, 0-9, _`);
      if (!["auto", "true", "false"].includes(args.timescaledb))
        throw new Error("--timescaledb is auto, true or false");
      const timescaledb =
        args.timescaledb === "auto"
          ? await withDatabase(
              config,
              async (sql) => (await sql`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`).length > 0,
            )
          : args.timescaledb === "true";
      const files = grafanaFiles({
        ...targetOf(config.databaseUrl),
        user: args.name,
        passwordPath: args["password-path"],
        timescaledb,
      });
      for (const [path, content] of Object.entries(files)) {
        const full = join(resolve(args.dir), path);
        mkdirSync(dirname(full), { recursive: true });
        writeFileSync(full, content, { mode: 0o644 });
        process.stdout.write(`wrote ${full}\n`);
      }
    } catch (err) {
      fail(err);
    }
  },
});

export const grafana = defineCommand({
  meta: { name: "grafana", description: "Grafana: the read-only database role and the provisioning files" },
  subCommands: { role, write },
});
