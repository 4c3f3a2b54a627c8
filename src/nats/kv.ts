/**
 * A small key-value bucket with revision-checked writes, laid out like a NATS KV bucket (stream
 * `KV_<bucket>`, subjects `$KV.<bucket>.<key>`, one message kept per key, deletes as
 * `KV-Operation: DEL` markers), so `nats kv` tools can read it. Written here on plain JetStream
 * calls because the @nats-io/kv package is not a dependency: create-if-absent and update are
 * publishes with Nats-Expected-Last-Subject-Sequence, which nats-server 2.9 checks atomically.
 */
import {
  DiscardPolicy,
  JetStreamApiError,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { headers, nanos } from "@nats-io/transport-node";

export interface KvEntry {
  key: string;
  /** The stream sequence of the last write (0: the key was never written). */
  revision: number;
  /** Null when deleted or never written. */
  value: string | null;
}

export interface KvBucketOptions {
  replicas?: number;
  /** Memory storage (lost with the broker; for state that is re-announced anyway). */
  memory?: boolean;
  /** Entries expire after this long (and the dedup window is at most this). */
  maxAgeMs?: number;
  /** A size bound: full, writes fail. */
  maxBytes?: number;
}

/** A revision check failed: someone else wrote the key since it was read. */
export class KvConflict extends Error {}

export class KvBucket {
  readonly stream: string;
  private readonly prefix: string;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    bucket: string,
  ) {
    this.stream = `KV_${bucket}`;
    this.prefix = `$KV.${bucket}.`;
  }

  static async open(
    js: JetStreamClient,
    jsm: JetStreamManager,
    bucket: string,
    o: KvBucketOptions = {},
  ): Promise<KvBucket> {
    const kv = new KvBucket(js, jsm, bucket);
    try {
      await jsm.streams.info(kv.stream);
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || !/not found/i.test(err.message)) throw err;
      await jsm.streams
        .add({
          name: kv.stream,
          subjects: [kv.filter],
          max_msgs_per_subject: 1,
          allow_rollup_hdrs: true,
          deny_delete: true,
          allow_direct: true,
          num_replicas: o.replicas ?? 1,
          storage: o.memory ? StorageType.Memory : StorageType.File,
          ...(o.maxAgeMs ? { max_age: nanos(o.maxAgeMs), duplicate_window: nanos(Math.min(o.maxAgeMs, 120_000)) } : {}),
          ...(o.maxBytes ? { max_bytes: o.maxBytes, discard: DiscardPolicy.New } : {}),
        })
        .catch((e) => {
          if (!/already in use|exists/i.test((e as Error).message)) throw e; // another process won the race
        });
    }
    return kv;
  }

  /** The subjects of every key (for a watch). */
  get filter(): string {
    return `${this.prefix}>`;
  }

  /** The subject a key's entries are written on, and back. */
  subject(key: string): string {
    return this.prefix + key;
  }

  keyOf(subject: string): string {
    return subject.slice(this.prefix.length);
  }

  /** Writes `value` whatever the key's revision (last writer wins). */
  async set(key: string, value: string, timeoutMs?: number): Promise<number> {
    return (await this.js.publish(this.prefix + key, value, { timeout: timeoutMs })).seq;
  }

  /** Removes the key's entries (a purge marker, rolled up), whatever its revision. */
  async purge(key: string, timeoutMs?: number): Promise<void> {
    const h = headers();
    h.set("KV-Operation", "PURGE");
    h.set("Nats-Rollup", "sub");
    await this.js.publish(this.prefix + key, "", { headers: h, timeout: timeoutMs });
  }

  async get(key: string): Promise<KvEntry> {
    const m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject(key) });
    if (!m) return { key, revision: 0, value: null };
    const op = m.header?.get("KV-Operation");
    return { key, revision: m.seq, value: op === "DEL" || op === "PURGE" ? null : m.string() };
  }

  /** Keys under `prefix` (e.g. "m.") that have a message, deleted ones included. */
  async keys(prefix: string): Promise<string[]> {
    const info = await this.jsm.streams.info(this.stream, { subjects_filter: `${this.prefix}${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(this.prefix.length));
  }

  /** Writes `value` if the key's revision is still `revision` (0: absent); returns the new revision. */
  async put(key: string, value: string, revision: number): Promise<number> {
    return this.write(key, value, revision, false);
  }

  /** Marks the key deleted if its revision is still `revision`. */
  async delete(key: string, revision: number): Promise<number> {
    return this.write(key, "", revision, true);
  }

  private async write(key: string, value: string, revision: number, del: boolean): Promise<number> {
    const h = del ? headers() : undefined;
    h?.set("KV-Operation", "DEL");
    try {
      const ack = await this.js.publish(this.prefix + key, value, {
        headers: h,
        expect: { lastSubjectSequence: revision, streamName: this.stream },
      });
      return ack.seq;
    } catch (err) {
      if (err instanceof JetStreamApiError && /wrong last sequence/i.test(err.message))
        throw new KvConflict(`${key}: ${err.message}`);
      throw err;
    }
  }
}
