/**
 * The read-only database role Grafana logs in as (docs/grafana.md): LOGIN, SELECT on exactly what
 * the fleet dashboard reads, read-only transactions and a statement timeout. The password is
 * never sent: the server gets a SCRAM-SHA-256 verifier computed here (RFC 5802/7677, the format
 * PostgreSQL stores), so it cannot appear in the server's statement log or pg_stat_activity.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import type { Sql } from "./client.ts";

/** What the dashboard reads; tenants only by id and name (never limits or keys). */
export const GRAFANA_GRANTS: readonly { table: string; columns?: readonly string[] }[] = [
  { table: "readings" },
  { table: "readings_1m" },
  { table: "devices" },
  { table: "alerts" },
  { table: "tenants", columns: ["id", "name"] },
];

export const ROLE_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
export const MIN_PASSWORD_LENGTH = 12;
const ITERATIONS = 4096;

/** PostgreSQL's stored form of a SCRAM-SHA-256 password (ASCII passwords: SASLprep changes nothing). */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16)): string {
  const salted = pbkdf2Sync(password, salt, ITERATIONS, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

export function passwordProblem(password: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) return `the password must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (!/^[\x21-\x7e]+$/.test(password)) return "the password must be printable ASCII without spaces";
  return null;
}

/**
 * Creates the role, or updates its password and grants when it exists (idempotent). Returns
 * whether it was created. Runs in one transaction.
 */
export async function ensureGrafanaRole(sql: Sql, name: string, password: string): Promise<boolean> {
  if (!ROLE_NAME_PATTERN.test(name)) throw new Error(`role name ${JSON.stringify(name)}: 1-63 of a-z, 0-9, _`);
  const problem = passwordProblem(password);
  if (problem) throw new Error(problem);
  const verifier = scramVerifier(password);
  return sql.begin(async (tx) => {
    const [existing] = await tx`SELECT 1 FROM pg_roles WHERE rolname = ${name}`;
    const role = tx(name);
    // A verifier, not a password: the only secret material in these statements is the hash.
    if (existing)
      await tx`ALTER ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${tx.unsafe(`'${verifier}'`)}`;
    else
      await tx`CREATE ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${tx.unsafe(`'${verifier}'`)}`;
    await tx`ALTER ROLE ${role} SET default_transaction_read_only = on`;
    await tx`ALTER ROLE ${role} SET statement_timeout = '30s'`;
    // CONNECT: PUBLIC has it on a new database; a database that revoked it grants it itself.
    await tx`GRANT USAGE ON SCHEMA public TO ${role}`;
    for (const g of GRAFANA_GRANTS) {
      await tx`REVOKE ALL ON ${tx(g.table)} FROM ${role}`;
      if (g.columns)
        await tx`GRANT SELECT (${tx.unsafe(g.columns.map((c) => `"${c}"`).join(", "))}) ON ${tx(g.table)} TO ${role}`;
      else await tx`GRANT SELECT ON ${tx(g.table)} TO ${role}`;
    }
    return !existing;
  });
}
