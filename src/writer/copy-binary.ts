/**
 * The readings' rows in PostgreSQL's binary COPY format (COPY … FROM STDIN (FORMAT binary)),
 * written straight into one Buffer: no ISO timestamps, uuid or float text for the server to parse
 * and none for the writer to build. Columns in COPY_COLUMNS order; the types must be the table's
 * exactly (text, text, timestamptz, uuid, float8, float8, jsonb, jsonb, timestamptz), as binary
 * COPY does no casts.
 *
 * Format: an 11-byte signature, int32 flags, int32 header-extension length; per tuple an int16
 * field count and per field an int32 byte length (-1 = NULL) and the bytes; an int16 -1 trailer.
 * timestamptz is int64 microseconds since 2000-01-01 UTC; jsonb is a version byte (1) + JSON text.
 */
import type { Row } from "./rows.ts";

const SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");
/** 2000-01-01T00:00:00Z in Unix milliseconds: PostgreSQL's timestamp epoch. */
const PG_EPOCH_MS = 946_684_800_000;
const FIELDS = 9;
const TWO_32 = 4_294_967_296;

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[97 + i] = 10 + i;
  HEX[65 + i] = 10 + i;
}

class Out {
  buf: Buffer;
  at = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
  int16(v: number): void {
    this.room(2);
    this.at = this.buf.writeInt16BE(v, this.at);
  }
  int32(v: number): void {
    this.room(4);
    this.at = this.buf.writeInt32BE(v, this.at);
  }
  null(): void {
    this.int32(-1);
  }
  float8(v: number): void {
    this.room(12);
    this.at = this.buf.writeInt32BE(8, this.at);
    this.at = this.buf.writeDoubleBE(v, this.at);
  }
  /** Unix milliseconds as timestamptz (whole microseconds fit a double exactly). */
  timestamp(ms: number): void {
    const us = (ms - PG_EPOCH_MS) * 1000;
    const hi = Math.floor(us / TWO_32);
    this.room(12);
    this.at = this.buf.writeInt32BE(8, this.at);
    this.at = this.buf.writeInt32BE(hi, this.at);
    this.at = this.buf.writeUInt32BE(us - hi * TWO_32, this.at);
  }
  /** UTF-8 text, after `prefix` bytes (jsonb's version byte). */
  text(s: string, prefix = -1): void {
    const extra = prefix < 0 ? 0 : 1;
    this.room(4 + extra + s.length * 3);
    const start = this.at + 4;
    if (extra) this.buf[start] = prefix;
    const n = this.buf.write(s, start + extra, "utf8");
    this.buf.writeInt32BE(n + extra, this.at);
    this.at = start + extra + n;
  }
  uuid(s: string): void {
    this.room(20);
    this.at = this.buf.writeInt32BE(16, this.at);
    let k = 0;
    for (let i = 0; i < s.length && k < 16; i++) {
      const hi = HEX[s.charCodeAt(i)] ?? -1;
      if (hi < 0) continue; // the dashes
      const lo = HEX[s.charCodeAt(++i)] ?? -1;
      if (lo < 0) throw new Error(`not a uuid: ${s}`);
      this.buf[this.at + k++] = (hi << 4) | lo;
    }
    if (k !== 16) throw new Error(`not a uuid: ${s}`);
    this.at += 16;
  }
}

export function copyBinary(rows: readonly Row[]): Buffer {
  const out = new Out(64 + rows.length * 160);
  out.room(SIGNATURE.length);
  out.at += SIGNATURE.copy(out.buf, out.at);
  out.int32(0);
  out.int32(0);
  for (const r of rows) {
    out.int16(FIELDS);
    out.text(r.tenant);
    out.text(r.deviceId);
    out.timestamp(r.ts);
    out.uuid(r.eventId);
    if (r.lat === null || r.lon === null) {
      out.null();
      out.null();
    } else {
      out.float8(r.lat);
      out.float8(r.lon);
    }
    if (r.metrics) out.text(JSON.stringify(r.metrics), 1);
    else out.null();
    if (r.attributes) out.text(JSON.stringify(r.attributes), 1);
    else out.null();
    out.timestamp(r.receivedAt);
  }
  out.int16(-1);
  return out.buf.subarray(0, out.at);
}
