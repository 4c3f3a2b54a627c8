/**
 * The CLI as a newcomer meets it, run as a child process with stdout and stderr piped: `--help`
 * names the whole command (`telemetry keys create`), lists every role, fits 100 columns and has no
 * ANSI escapes in a pipe or with NO_COLOR on a terminal; `config check` warns (exit 0) while channel secrets are encrypted with
 * the data dir's secret.key, and not once TELEMETRY_SECRET_KEY is set; a zero-config start after
 * the first (whose generated key was shown once) logs the command that makes a new key.
 */
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROLES } from "../../src/config/schema.ts";
import { createSql } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { configureLogger } from "../../src/lib/log.ts";
import { bootstrapKeys } from "../../src/tenants/bootstrap.ts";
import { hashKey } from "../../src/tenants/keys.ts";
import { freshDatabase } from "../helpers/services.ts";

const root = join(import.meta.dir, "../..");

function cli(args: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync({
    cmd: [process.execPath, "src/cli/main.ts", ...args],
    cwd: root,
    env: { PATH: process.env.PATH!, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

const ESC = "\x1b[";

describe("--help", () => {
  test("serve --help lists every role, fits 100 columns, no escapes in a pipe", () => {
    const r = cli(["serve", "--help"]);
    expect(r.code).toBe(0);
    const description = r.out.split("\n")[0]!;
    for (const role of ROLES) expect(description).toContain(role);
    expect(r.out).toContain("--roles=<value>");
    expect(r.out).toContain("--log-level=<value>");
    expect(r.out).not.toContain(ESC);
    const widest = Math.max(...r.out.split("\n").map((l) => l.length));
    expect(widest).toBeLessThanOrEqual(100);
    // Wrapped descriptions continue under their column: the env name of the longest doc is still there, whole.
    expect(r.out).toContain("[TELEMETRY_MQTT_STREAM_MAX_BYTES, default: 1GiB]");
  });

  test("every command's USAGE line starts with telemetry and names the whole command", () => {
    const commands = [
      ["serve"],
      ["replay"],
      ["config"],
      ["keys"],
      ["keys", "create"],
      ["keys", "revoke"],
      ["tenants", "create"],
      ["quarantine", "list"],
      ["dlq", "replay"],
      ["mqtt", "users"],
      ["routes", "create"],
      [],
    ];
    for (const command of commands) {
      const r = cli([...command, "--help"]);
      expect(r.code).toBe(0);
      const usage = r.out.split("\n").find((l) => l.startsWith("USAGE "));
      expect(usage).toStartWith(`USAGE ${["telemetry", ...command].join(" ")}`);
      expect(r.out).not.toContain(ESC);
      expect(Math.max(...r.out.split("\n").map((l) => l.length))).toBeLessThanOrEqual(100);
    }
  });

  test("on a terminal (script(1) gives the command one) help is coloured; with NO_COLOR (any value) it is not", () => {
    const onTty = (env: Record<string, string>) =>
      Bun.spawnSync({
        cmd: ["script", "-qec", `${process.execPath} src/cli/main.ts keys create --help`, "/dev/null"],
        cwd: root,
        env: { PATH: process.env.PATH!, ...env },
      }).stdout.toString();
    const coloured = onTty({});
    expect(coloured).toContain("USAGE");
    expect(coloured).toContain(ESC);
    for (const value of ["1", "yes"]) {
      const plain = onTty({ NO_COLOR: value });
      expect(plain).toContain("USAGE telemetry keys create");
      expect(plain).not.toContain(ESC);
    }
  });

  test("a usage error shows the command's usage, plainly, and exits 1", () => {
    const r = cli(["keys"]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("USAGE telemetry keys create|list|revoke");
    expect(r.out + r.err).not.toContain(ESC);
  });
});

describe("config check and the secret key", () => {
  const dataDir = "/var/lib/telemetry-test/data";

  test("without TELEMETRY_SECRET_KEY: a warning naming the data dir's secret.key and the setting; exit 0", () => {
    const r = cli(["config", "check"], { TELEMETRY_DATA_DIR: dataDir });
    expect(r.code).toBe(0);
    expect(r.out).toContain('TELEMETRY_SECRET_KEY=""');
    const warnings = r.err.trim().split("\n");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toStartWith(`telemetry: warning: channel secrets are encrypted with ${dataDir}/secret.key`);
    expect(warnings[0]).toContain("set TELEMETRY_SECRET_KEY");
    expect(r.err).not.toContain(ESC);
  });

  test("with TELEMETRY_SECRET_KEY (or --secret-key): no warning, and the key is not printed", () => {
    const key = randomBytes(32).toString("base64");
    for (const r of [
      cli(["config", "check"], { TELEMETRY_DATA_DIR: dataDir, TELEMETRY_SECRET_KEY: key }),
      cli(["config", "check", "--secret-key", key], { TELEMETRY_DATA_DIR: dataDir }),
    ]) {
      expect(r.code).toBe(0);
      expect(r.err).toBe("");
      expect(r.out).toContain('TELEMETRY_SECRET_KEY="***"');
      expect(r.out + r.err).not.toContain(key);
    }
  });

  test("a bad value still exits 2 with its problem, and no warning is added", () => {
    const r = cli(["config", "check", "--batch-size", "zero"]);
    expect(r.code).toBe(2);
    const lines = r.err.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toStartWith("telemetry: --batch-size:");
  });
});

test("zero config: the first start generates a key; a later start logs how to make a new one, and that command works", async () => {
  const url = await freshDatabase("bootstrap");
  const sql = createSql(url, { max: 2, name: "test" });
  const dataDir = mkdtempSync(join(tmpdir(), "telemetry-bootstrap-"));
  const lines: string[] = [];
  configureLogger("info", true, { write: (line: string) => void lines.push(line) });
  try {
    await migrate(sql, { timescale: "off", retentionMs: null, compressAfterMs: 7 * 86_400_000 });
    const first = await bootstrapKeys(sql, [], dataDir);
    expect(first.generated?.tenant).toBe("default");
    expect(lines.join("")).not.toContain("telemetry keys create");
    const second = await bootstrapKeys(sql, [], dataDir);
    expect(second.generated).toBeUndefined();
    const hint = lines.map((l) => JSON.parse(l) as { msg: string }).find((l) => l.msg.includes("to make a new key"));
    expect(hint?.msg).toContain("telemetry keys create default");
    expect(lines.join("")).not.toContain(first.generated!.key);
    // The hinted command, with this server's --database-url, makes a working key.
    const made = cli(["keys", "create", "default", "--json", "--database-url", url], { LOG_LEVEL: "warn" });
    expect(made.code).toBe(0);
    const { key } = JSON.parse(made.out) as { key: string };
    expect((await sql`SELECT tenant FROM api_keys WHERE hash = ${hashKey(key)}`)[0]?.tenant).toBe("default");
  } finally {
    configureLogger("warn", true);
    await sql.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
