/**
 * Logging: pino, JSON lines by default, human-readable when stdout is a terminal.
 * Never pass secrets (keys, passwords, full database URLs) to the logger.
 *
 * Modules take their logger at import time (`const log = logger("writer")`), before the
 * configuration is known; the returned logger follows whatever configureLogger() sets later.
 */
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

let root: Logger = pino({ level: "info", base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
let children = new Map<string, Logger>();

export function configureLogger(level: string, forceJson = false): Logger {
  const usePretty = !forceJson && process.stdout.isTTY;
  root = usePretty
    ? pino({ level, base: undefined }, pretty({ colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" }))
    : pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
  children = new Map();
  return root;
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
