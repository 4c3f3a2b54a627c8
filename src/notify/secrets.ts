/**
 * Channel secrets at rest: AES-256-GCM with a random 12-byte IV per value, stored as
 * `v1:<base64url iv>:<base64url ciphertext+tag>`. The GCM tag makes a tampered value or a wrong
 * key an error, never a silently wrong secret.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface SecretBox {
  encrypt(plain: string): string;
  /** Throws when the value was tampered with or encrypted under another key. */
  decrypt(stored: string): string;
}

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== KEY_BYTES) throw new Error(`secret key must be ${KEY_BYTES} bytes, got ${key.length}`);
  return {
    encrypt(plain) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      const sealed = Buffer.concat([cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()]);
      return `v1:${iv.toString("base64url")}:${sealed.toString("base64url")}`;
    },
    decrypt(stored) {
      const [version, ivText, sealedText, ...rest] = stored.split(":");
      if (version !== "v1" || ivText === undefined || sealedText === undefined || rest.length > 0)
        throw new Error("not an encrypted secret (expected v1:<iv>:<data>)");
      const iv = Buffer.from(ivText, "base64url");
      const sealed = Buffer.from(sealedText, "base64url");
      if (iv.length !== IV_BYTES || sealed.length < TAG_BYTES) throw new Error("malformed encrypted secret");
      const decipher = createDecipheriv("aes-256-gcm", key, iv);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      try {
        return Buffer.concat([
          decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)),
          decipher.final(),
        ]).toString("utf8");
      } catch {
        throw new Error("cannot decrypt secret: wrong key (TELEMETRY_SECRET_KEY) or corrupted value");
      }
    },
  };
}

/** The base64 (or base64url) of exactly 32 bytes, e.g. the output of `openssl rand -base64 32`. */
export function parseKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, "base64") : Buffer.alloc(0);
  if (key.length !== KEY_BYTES)
    throw new Error(`secret key must be the base64 of ${KEY_BYTES} bytes (create one with: openssl rand -base64 32)`);
  return key;
}

/** Reads the key file, or creates it (mode 0600) with a fresh random key when it does not exist. */
export function loadOrCreateKey(file: string): Buffer {
  try {
    return parseKey(readFileSync(file, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`${file}: ${(err as Error).message}`);
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    // "wx": when two processes start at once, one creates the key and the other reads it.
    writeFileSync(file, `${randomBytes(KEY_BYTES).toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  return parseKey(readFileSync(file, "utf8"));
}
