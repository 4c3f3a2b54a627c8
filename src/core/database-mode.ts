/**
 * Which database a process without DATABASE_URL uses (TELEMETRY_DATABASE):
 * - postgres: a supervised local PostgreSQL (its server binaries are required);
 * - embedded: PGlite in this process, data in `<data dir>/pglite`;
 * - auto: the database the data dir already holds stays in use (installing PostgreSQL later, or
 *   losing its binaries, must not switch the server to an empty database; `telemetry migrate-to`
 *   moves the data), else PostgreSQL when its binaries are found, else embedded.
 */
export const DATABASE_CHOICES = ["auto", "postgres", "embedded"] as const;
export type DatabaseChoice = (typeof DATABASE_CHOICES)[number];
export type DatabaseKind = "url" | "postgres" | "embedded";

export interface DatabaseFacts {
  choice: DatabaseChoice;
  hasUrl: boolean;
  /** `<data dir>/pglite` holds a database. */
  embeddedExists: boolean;
  /** `<data dir>/pg` holds a (supervised PostgreSQL) database. */
  postgresExists: boolean;
  /** Whether PostgreSQL's server binaries are found (asked only when it matters). */
  postgresFound: () => boolean;
}

export function chooseDatabase(f: DatabaseFacts): { kind: DatabaseKind } | { error: string } {
  if (f.hasUrl) {
    if (f.choice === "embedded")
      return { error: "TELEMETRY_DATABASE=embedded and DATABASE_URL are both set; unset one of them" };
    return { kind: "url" };
  }
  if (f.choice === "postgres") return { kind: "postgres" };
  if (f.choice === "embedded") return { kind: "embedded" };
  if (f.embeddedExists && f.postgresExists)
    return {
      error:
        "the data dir holds both an embedded database (pglite) and a PostgreSQL one (pg); choose with TELEMETRY_DATABASE=embedded or postgres",
    };
  if (f.postgresExists) return { kind: "postgres" };
  if (f.embeddedExists || !f.postgresFound()) return { kind: "embedded" };
  return { kind: "postgres" };
}
