/** Durations in config: "500ms", "30s", "2m", "72h", "7d", or a bare number of milliseconds. */
const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$/;

/** Parses a duration to milliseconds; returns null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const match = PATTERN.exec(text.trim());
  if (!match) return null;
  const value = Number(match[1]) * UNITS[match[2] ?? "ms"]!;
  return Number.isFinite(value) ? Math.round(value) : null;
}

/** Formats milliseconds with the largest unit that divides it exactly ("72h", "2m", "1500ms"). */
export function formatDuration(ms: number): string {
  for (const unit of ["w", "d", "h", "m", "s"] as const) {
    const size = UNITS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
