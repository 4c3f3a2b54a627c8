/** What the supervisors of local child processes (nats-server, PostgreSQL) give their callers. */
export interface Supervised extends AsyncDisposable {
  /** Stops the child gracefully (SIGTERM, then SIGKILL after a grace period) and stops supervising it. */
  stop(): Promise<void>;
  /** Starts it again after stop() or kill(), on the same port/socket and data directory. */
  start(): Promise<void>;
  /** Sends SIGKILL (crash simulation); the supervisor does NOT restart it until start() is called. */
  kill(): Promise<void>;
  readonly pid: number | undefined;
  readonly running: boolean;
}

export interface LocalNats extends Supervised {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** The server ID our latest nats-server printed at its start (new at every start): any other server on the port is not ours. */
  readonly serverId: string | undefined;
  /** With MQTT on: the users file the config includes, and a reload (SIGHUP) after rewriting it. */
  readonly mqtt?: { readonly url: string; readonly usersFile: string; reload(): void };
}

export interface LocalPostgres extends Supervised {
  /** A postgres:// URL that postgres.js accepts for the `telemetry` (or given) database. */
  readonly url: string;
  /** URL of another database on the same server (created by createDatabase). */
  urlFor(database: string): string;
  createDatabase(name: string): Promise<void>;
  readonly dataDir: string;
}
