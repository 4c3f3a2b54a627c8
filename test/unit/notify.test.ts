/** Channel secret encryption and webhook signatures. */
import { describe, expect, test } from "bun:test";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSecretBox, loadOrCreateKey, parseKey } from "../../src/notify/secrets.ts";
import { signatureHeaders, verifySignature } from "../../src/notify/signing.ts";

describe("secrets", () => {
  const box = createSecretBox(randomBytes(32));

  test("round trip, in the v1 format, with a fresh IV each time", () => {
    const a = box.encrypt("hunter2 ✓");
    const b = box.encrypt("hunter2 ✓");
    expect(a).toMatch(/^v1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(box.decrypt(a)).toBe("hunter2 ✓");
    expect(box.decrypt(b)).toBe("hunter2 ✓");
    expect(a).not.toContain("hunter2");
  });

  test("a tampered value or another key fails loudly", () => {
    const stored = box.encrypt("secret value");
    const [v, iv, data] = stored.split(":");
    const flipped = Buffer.from(data!, "base64url");
    flipped[0]! ^= 1;
    expect(() => box.decrypt(`${v}:${iv}:${flipped.toString("base64url")}`)).toThrow(/cannot decrypt/);
    expect(() => createSecretBox(randomBytes(32)).decrypt(stored)).toThrow(/wrong key/);
    expect(() => box.decrypt("plain text")).toThrow(/not an encrypted secret/);
    expect(() => box.decrypt("v1:AAAA:AAAA")).toThrow(/malformed/);
  });

  test("keys: 32 bytes of base64, anything else is a clear error", () => {
    const key = randomBytes(32);
    expect(parseKey(`${key.toString("base64")}\n`).equals(key)).toBe(true);
    expect(() => parseKey(randomBytes(16).toString("base64"))).toThrow(/base64 of 32 bytes/);
    expect(() => parseKey("not base64 at all!")).toThrow(/base64 of 32 bytes/);
    expect(() => createSecretBox(randomBytes(16))).toThrow(/32 bytes/);
  });

  test("loadOrCreateKey creates a 0600 key file once, then reads it", () => {
    const dir = mkdtempSync(join(tmpdir(), "telemetry-key-"));
    try {
      const file = join(dir, "sub", "secret.key");
      const first = loadOrCreateKey(file);
      expect(first.length).toBe(32);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(loadOrCreateKey(file).equals(first)).toBe(true);
      expect(parseKey(readFileSync(file, "utf8")).equals(first)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("signing", () => {
  const secret = "whsec-0123456789abcdef";
  const body = JSON.stringify({ delivery_id: "d1", event: "alert.opened", alert: { message: "temp 81.5 > 80" } });
  const ts = 1_763_805_600;

  test("headers are hand-computable HMAC-SHA256", () => {
    const h = signatureHeaders(secret, body, ts + 0.9);
    expect(h["X-Telemetry-Timestamp"]).toBe(String(ts));
    expect(h["X-Telemetry-Signature"]).toBe(`v1=${createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex")}`);
    expect(h["X-Hub-Signature-256"]).toBe(`sha256=${createHmac("sha256", secret).update(body).digest("hex")}`);
  });

  test("the documented openssl one-liner gives the same signature", () => {
    const run = Bun.spawnSync(["sh", "-c", `printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"`], {
      env: { ...process.env, TS: String(ts), BODY: body, SECRET: secret },
    });
    expect(run.exitCode).toBe(0);
    const hex = /([0-9a-f]{64})\s*$/.exec(run.stdout.toString())?.[1];
    expect(`v1=${hex}`).toBe(signatureHeaders(secret, body, ts)["X-Telemetry-Signature"]);
  });

  test("verifySignature: valid within tolerance; tampering, another secret or a stale timestamp fail", () => {
    const h = signatureHeaders(secret, body, ts);
    expect(verifySignature(secret, body, h, ts + 10)).toBe(true);
    expect(verifySignature(secret, body, new Headers(h), ts - 299)).toBe(true);
    expect(
      verifySignature(secret, body, Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v])), ts),
    ).toBe(true);
    expect(verifySignature(secret, `${body} `, h, ts)).toBe(false);
    expect(verifySignature("another-secret-000", body, h, ts)).toBe(false);
    expect(verifySignature(secret, body, h, ts + 301)).toBe(false);
    expect(verifySignature(secret, body, h, ts + 3_600, 7_200)).toBe(true);
    expect(verifySignature(secret, body, { ...h, "X-Telemetry-Timestamp": String(ts + 1) }, ts)).toBe(false);
    expect(verifySignature(secret, body, { "X-Telemetry-Timestamp": String(ts) }, ts)).toBe(false);
  });
});
