/**
 * The one place that decides whether a database error is worth retrying. Only errors that say
 * "this data can never be stored" are final (SQLSTATE class 22 data exception, 23 integrity
 * violation); everything else (connection loss, shutdown, locks, missing tables during a
 * deploy, bugs fixed by a restart) is retried, because giving up would lose accepted data.
 */
export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) {
    const cls = code.slice(0, 2);
    return cls !== "22" && cls !== "23";
  }
  return true;
}

/**
 * Connection-level trouble (worth retrying forever) as opposed to an error in the work itself:
 * a retryable error that is not this may still be a bug or a bad rule, which a worker counts
 * towards quarantine (the evaluator) instead of retrying forever.
 */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return /^(08|57P|53)/.test(code) || /^(CONNECTION_|CONNECT_TIMEOUT|E[A-Z]+$)/.test(code);
}

export function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === "string" ? `${e.code}: ` : "";
  return `${code}${typeof e?.message === "string" ? e.message : String(err)}`;
}
