/**
 * Logging: pino, JSON lines by default, human-readable when stdout is a terminal.
 * Never pass secrets (keys, passwords, full database URLs) to the logger.
 */
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

let root: Logger = pino({ level: "info", base: undefined });

export function configureLogger(level: string, forceJson = false): Logger {
  const usePretty = !forceJson && process.stdout.isTTY;
  root = usePretty
    ? pino({ level, base: undefined }, pretty({ colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" }))
    : pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
  return root;
}

export function logger(component: string): Logger {
  return root.child({ component });
}
