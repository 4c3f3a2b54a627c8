/**
 * Which phases a bench run does: BENCH_PHASES or --phases, a comma-separated list of `raw`,
 * `naive`, `server`, `routes`, `peers` (all four systems of the peers phase) or single systems of it
 * (`ndjson`, `lp`, `influxdb`, `victoriametrics`); absent, empty or `all`: everything.
 */
import { PEER_NAMES, type PeerName } from "./peers-phase.ts";

export const PHASES = ["raw", "naive", "server", "routes", "peers"] as const;

export interface Selection {
  raw: boolean;
  naive: boolean;
  server: boolean;
  routes: boolean;
  peers: Set<PeerName>;
}

export function selectPhases(spec: string | undefined): Selection {
  const names = (spec ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const all = names.length === 0 || names.includes("all");
  const known = new Set<string>([...PHASES, ...PEER_NAMES, "all"]);
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length)
    throw new Error(`unknown bench phase ${unknown.join(", ")}: use ${[...known].join(", ")} (comma-separated)`);
  const peers = new Set<PeerName>(
    all || names.includes("peers") ? PEER_NAMES : PEER_NAMES.filter((p) => names.includes(p)),
  );
  return {
    raw: all || names.includes("raw"),
    naive: all || names.includes("naive"),
    server: all || names.includes("server"),
    routes: all || names.includes("routes"),
    peers,
  };
}

/** The selection from --phases=… / --phases … on the command line, else BENCH_PHASES. */
export function phasesFromArgs(argv: readonly string[], env: string | undefined): Selection {
  const i = argv.findIndex((a) => a === "--phases" || a.startsWith("--phases="));
  if (i < 0) return selectPhases(env);
  const arg = argv[i]!;
  return selectPhases(arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : argv[i + 1]);
}
