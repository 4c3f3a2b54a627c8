/**
 * The only module that reads the environment. Precedence: flag, then environment, then default.
 * A bad value stops the process with one line per problem, naming where the value came from.
 */
import { readFileSync } from "node:fs";
import { configSchema, SETTINGS, type Config, type SettingKey } from "./schema.ts";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  }
}

export type Flags = Partial<Record<string, string | boolean | undefined>>;

type Source = "flag" | "env" | "default";

function rawValues(flags: Flags, env: Record<string, string | undefined>) {
  const raw: Record<string, string> = {};
  const sources: Record<string, Source> = {};
  for (const [key, s] of Object.entries(SETTINGS)) {
    const flag = flags[s.flag];
    if (flag !== undefined) {
      raw[key] = String(flag);
      sources[key] = "flag";
    } else if (env[s.env] !== undefined) {
      raw[key] = env[s.env]!;
      sources[key] = "env";
    } else {
      raw[key] = s.default;
      sources[key] = "default";
    }
  }
  return { raw, sources };
}

export function loadConfig(flags: Flags = {}, env: Record<string, string | undefined> = process.env): Config {
  const { raw, sources } = rawValues(flags, env);
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0]) as SettingKey;
    const s = SETTINGS[key];
    const where = sources[key] === "flag" ? `--${s.flag}` : sources[key] === "env" ? s.env : `default of ${s.env}`;
    return `${where}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/** The effective configuration as text lines, secrets hidden. */
export function describeConfig(config: Config): string[] {
  return (Object.keys(SETTINGS) as SettingKey[]).map((key) => {
    const s = SETTINGS[key] as { env: string; secret?: boolean };
    const value = config[key];
    const shown = s.secret ? redact(key, value) : JSON.stringify(shownValue(value));
    return `${s.env}=${shown}`;
  });
}

/** A multiple-or-duration setting ({ times } | { ms }) shows as the text an operator writes ("4x") or its milliseconds. */
function shownValue(value: unknown): unknown {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const v = value as { times?: number; ms?: number };
    if (typeof v.times === "number") return `${v.times}x`;
    if (typeof v.ms === "number") return v.ms;
  }
  return value;
}

function redact(key: SettingKey, value: unknown): string {
  if (key === "databaseUrl" && typeof value === "string" && value) {
    try {
      const u = new URL(value);
      if (u.password) u.password = "***";
      return JSON.stringify(u.toString());
    } catch {
      return '"***"';
    }
  }
  if (Array.isArray(value)) return JSON.stringify(value.map((k: { tenant: string }) => `${k.tenant}:***`));
  return value ? '"***"' : '""';
}

/**
 * Whether to write ANSI colours to a stream: only to a terminal, and never when NO_COLOR is set
 * (https://no-color.org: any non-empty value) or TERM is "dumb". Read here, not in the settings
 * table: a convention of the terminal, needed before any configuration is loaded (--help).
 */
export function colourOutput(
  stream: { isTTY?: boolean },
  env: Record<string, string | undefined> = process.env,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.TERM === "dumb") return false;
  return stream.isTTY === true;
}

/** JavaScriptCore's option (read by Bun from the environment when the process starts) behind TELEMETRY_JSC_RAM_SIZE. */
export const JSC_RAM_ENV = "BUN_JSC_forceRAMSize";

/**
 * The names in the environment this process image started with (Linux: /proc/self/environ), or
 * null where that cannot be read. Variables Bun loaded from a `.env` file are not among them.
 */
export function startEnvNames(path = "/proc/self/environ"): Set<string> | null {
  try {
    const names = readFileSync(path, "utf8")
      .split("\0")
      .filter((kv) => kv.includes("="))
      .map((kv) => kv.slice(0, kv.indexOf("=")));
    return new Set(names);
  } catch {
    return null;
  }
}

/**
 * The environment `serve` re-executes itself with so JavaScriptCore sizes its heap for `ramBytes`
 * (decision 0540), or null. A BUN_JSC_forceRAMSize the process started with wins (the operator's,
 * or this re-execution's: the new process never re-executes again). One that only a `.env` file
 * set (not in `startNames`) came too late for Bun, which reads JSC options when the process
 * starts: the process re-executes with it as it is, even with the setting off. `startNames`
 * null (unknown): every variable is taken as the start environment's.
 */
export function jscRestartEnv(
  ramBytes: number,
  env: Record<string, string | undefined> = process.env,
  startNames: Set<string> | null = startEnvNames(),
): Record<string, string> | null {
  const set = env[JSC_RAM_ENV];
  if (set !== undefined && (startNames === null || startNames.has(JSC_RAM_ENV))) return null;
  if (set === undefined && ramBytes <= 0) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  if (set === undefined) out[JSC_RAM_ENV] = String(Math.round(ramBytes));
  return out;
}
