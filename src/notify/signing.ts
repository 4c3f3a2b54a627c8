/**
 * Webhook signatures. Two headers, both HMAC-SHA256 with the channel secret, in hex:
 *   X-Telemetry-Signature: v1=<hmac of "<timestamp>.<body>">  (the timestamp bounds replays)
 *   X-Hub-Signature-256:   sha256=<hmac of the body>           (what GitHub-style receivers check)
 * A receiver can check the first by hand:
 *   printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export type SignatureHeaders = {
  "X-Telemetry-Timestamp": string;
  "X-Telemetry-Signature": string;
  "X-Hub-Signature-256": string;
};

const hmacHex = (secret: string, data: string) => createHmac("sha256", secret).update(data, "utf8").digest("hex");

export function signatureHeaders(secret: string, body: string, timestampSeconds: number): SignatureHeaders {
  const ts = String(Math.floor(timestampSeconds));
  return {
    "X-Telemetry-Timestamp": ts,
    "X-Telemetry-Signature": `v1=${hmacHex(secret, `${ts}.${body}`)}`,
    "X-Hub-Signature-256": `sha256=${hmacHex(secret, body)}`,
  };
}

type HeaderSource = Headers | Record<string, string | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Checks X-Telemetry-Signature and that X-Telemetry-Timestamp is within toleranceSeconds of now. */
export function verifySignature(
  secret: string,
  body: string,
  headers: HeaderSource,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const ts = header(headers, "X-Telemetry-Timestamp");
  const signature = header(headers, "X-Telemetry-Signature");
  if (!ts || !signature || !/^\d{1,12}$/.test(ts)) return false;
  if (Math.abs(nowSeconds - Number(ts)) > toleranceSeconds) return false;
  return sameText(signature, `v1=${hmacHex(secret, `${ts}.${body}`)}`);
}
