/**
 * Logging: pino, JSON lines by default, human-readable when stdout is a terminal (coloured unless
 * NO_COLOR is set; never when stdout is a pipe or a file).
 * Never pass secrets (keys, passwords, full database URLs) to the logger; as a second line of
 * defence, fields named like secrets are redacted wherever they appear (REDACT_PATHS).
 *
 * Modules take their logger at import time (`const log = logger("writer")`), before the
 * configuration is known; the returned logger follows whatever configureLogger() sets later.
 *
 * JSON goes to stdout through an asynchronous writer (sonic-boom, sync: false): a line costs the
 * event loop ~7 µs instead of a blocking write; pino flushes it when the process exits.
 */
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";
import pretty from "pino-pretty";
import { colourOutput } from "../config/load.ts";

export type { Logger };

/** Field names that hold secrets, at the top level or one level down (e.g. {headers: {authorization}}). */
const SECRET_FIELDS = [
  "authorization",
  "key",
  "apiKey",
  "api_key",
  "token",
  "adminToken",
  "secret",
  "password",
  "databaseUrl",
  "evaluatorDatabaseUrl",
  "secretKey",
  "apiKeys",
  "cookie",
];
export const REDACT_PATHS = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]);

const base = (level: string): LoggerOptions => ({
  level,
  base: undefined,
  timestamp: pino.stdTimeFunctions.isoTime,
  redact: { paths: REDACT_PATHS, censor: "[redacted]" },
});

let root: Logger = pino(base("info"));
/** The same output without redaction, for the per-request line: its fields are fixed and secret-free, and redaction would triple its cost (~8 -> ~27 µs). */
let plain: Logger = pino({ ...base("info"), redact: [] });
let plainHttp: Logger | null = null;
/** One asynchronous stdout writer per process, however often the logger is reconfigured. */
let stdout: DestinationStream | null = null;
let children = new Map<string, Logger>();

/** destination: for tests (a stream that collects lines); otherwise stdout, pretty on a terminal. */
export function configureLogger(level: string, forceJson = false, destination?: DestinationStream): Logger {
  const usePretty = !destination && !forceJson && process.stdout.isTTY;
  const out = usePretty
    ? pretty({ colorize: colourOutput(process.stdout), translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" })
    : (destination ?? (stdout ??= pino.destination({ dest: 1, sync: false, minLength: 0 })));
  const options = usePretty ? { level, base: undefined } : base(level);
  root = pino({ ...options, redact: base(level).redact }, out);
  plain = pino({ ...options, redact: [] }, out);
  children = new Map();
  plainHttp = null;
  return root;
}

/**
 * Waits (at most `timeoutMs`) until the asynchronous stdout writer has written out what it holds:
 * call it before process.exit, which otherwise can cut the last lines ("stopped") while a write to
 * a slow pipe is in flight (sonic-boom's flush() returns at once with minLength 0).
 */
export function flushLogs(timeoutMs = 1000): Promise<void> {
  const out = stdout as
    | (DestinationStream & { _writing?: boolean; _len?: number; once?: (event: string, fn: () => void) => void })
    | null;
  if (!out?.once || (!out._writing && !out._len)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    out.once!("drain", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function current(component: string): Logger {
  let child = children.get(component);
  if (!child) children.set(component, (child = root.child({ component })));
  return child;
}

export function logger(component: string): Logger {
  return new Proxy({} as Logger, {
    get(_, prop) {
      const target = current(component);
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The logger of the per-request summary line (component "http"): call it per request (it follows configureLogger). Pass only fixed, secret-free fields. */
export function requestLog(): Logger {
  return (plainHttp ??= plain.child({ component: "http" }));
}
