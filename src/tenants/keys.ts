/**
 * API keys: `tk_` + an 8-character prefix + a 43-character secret (6 + 32 random bytes,
 * base64url). Only the SHA-256 of the whole key is stored: with 256 random bits a fast hash is
 * enough (nothing to brute-force), and it keeps a cache miss at ingest to one indexed lookup.
 * Keys of another shape (bootstrap keys from TELEMETRY_API_KEYS, keys generated before the key
 * store) are found by a prefix taken from their hash instead.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const KEY_PATTERN = /^tk_([A-Za-z0-9_-]{8})[A-Za-z0-9_-]{43}$/;

export function generateKey(): string {
  return `tk_${randomBytes(6).toString("base64url")}${randomBytes(32).toString("base64url")}`;
}

const fast = typeof Bun !== "undefined";

/** SHA-256 hex; under Bun one native call (the same digest, about half the CPU of node:crypto's hasher). */
export function hashKey(key: string): string {
  return fast ? (Bun.SHA256.hash(key, "hex") as string) : createHash("sha256").update(key).digest("hex");
}

/** The part of a key (or of its hash) that finds its row; shown in listings to tell keys apart. */
export function keyPrefix(key: string, hash = hashKey(key)): string {
  return KEY_PATTERN.exec(key)?.[1] ?? `#${hash.slice(0, 16)}`;
}

/** Constant-time comparison of two hex SHA-256 digests. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}

/**
 * bcrypt of the key, for nats-server's MQTT users (it checks passwords against bcrypt only).
 * Cost 6: a key carries 256 random bits, so a slow hash protects nothing, while nats-server pays
 * the cost at every MQTT connect.
 */
export function mqttHash(key: string): string {
  return Bun.password.hashSync(key, { algorithm: "bcrypt", cost: 6 });
}
