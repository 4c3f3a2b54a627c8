/**
 * What the build (scripts/build.ts) embedded in this executable. The build's entry module calls
 * registerEmbedded() before the CLI starts; from source (`bun src/cli/main.ts`, tests) nothing is
 * registered and embedded() says so: the code then falls back to what the machine has.
 */

export interface EmbeddedNatsServer {
  /** Where the executable's virtual file system holds it (/$bunfs/...), readable but not executable. */
  path: string;
  /** e.g. "2.9.10", from its `--version` at build time. */
  version: string;
  /** Hex SHA-256 of the binary, computed at build time: the extracted copy must match it. */
  sha256: string;
  size: number;
  /** Where the build machine had it, e.g. /usr/sbin/nats-server (for `telemetry version`). */
  builtFrom: string;
}

export interface Embedded {
  natsServer?: EmbeddedNatsServer;
  /** The license texts of everything the executable carries, one text file (read only by `telemetry licenses`). */
  licensesPath?: string;
}

let current: Embedded = {};

export function registerEmbedded(parts: Embedded): void {
  current = parts;
}

export function embedded(): Embedded {
  return current;
}
