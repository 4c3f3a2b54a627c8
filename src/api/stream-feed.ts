/**
 * One JetStream stream fanned out in memory to the live-stream sessions of this process
 * (decision 0620): one ordered consumer per stream per process, started with the first session
 * and stopped a while after the last, whatever the number of sessions. A session that resumes
 * from an older position first reads that tenant's messages through a short-lived consumer of its
 * own (catch-up), then joins the fan-out; positions (stream sequences) make the hand-over exact.
 *
 * `gate` holds each message until it may be shown: for readings, until the writer has committed
 * it (its durable consumer's ack floor has reached the message, see CommitGate).
 */
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { sleep } from "../lib/backoff.ts";
import { logger } from "../lib/log.ts";
import type { Broker } from "../nats/connection.ts";

const log = logger("stream");

export interface FeedItem<T> {
  seq: number;
  value: T;
}

export type Listener<T> = (item: FeedItem<T>) => void;

export interface FeedOptions<T> {
  stream: string;
  /** One tenant's subjects (catch-up's filter); the fan-out reads the whole stream. */
  tenantSubjects: (tenant: string) => string;
  tenantOf: (subject: string) => string | null;
  /** Null: not shown (undecodable). */
  decode: (msg: JsMsg) => T | null;
  gate?: (seq: number, stopped: () => boolean) => Promise<void>;
  /** Where the fan-out starts, given the stream's last sequence (default: after it). */
  startAfter?: (last: number) => Promise<number>;
  /** How long the fan-out keeps running with no session (default 30 s). */
  idleMs?: number;
}

export class Feed<T> {
  /** Highest sequence handed to the listeners (every tenant's); startSeq - 1 before the first. */
  lastDispatched = 0;
  /** Where the running fan-out started. */
  startSeq = Number.POSITIVE_INFINITY;
  private readonly listeners = new Map<string, Set<Listener<T>>>();
  private count = 0;
  private starting: Promise<void> | null = null;
  private messages: ConsumerMessages | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  /** Catch-ups at once per feed: each is a consumer on the broker. */
  private readonly slots = new Slots(8);
  /** Bumped by each start and stop: a loop of an earlier start ends. */
  private generation = 0;

  constructor(
    private readonly broker: Broker,
    private readonly opts: FeedOptions<T>,
  ) {}

  get running(): boolean {
    return this.messages !== null;
  }

  /** Starts the fan-out if needed; resolves once startSeq and lastDispatched are set. */
  ensureRunning(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.starting ??= this.start().catch((err) => {
      this.starting = null;
      throw err;
    });
    return this.starting;
  }

  add(tenant: string, listener: Listener<T>): void {
    let set = this.listeners.get(tenant);
    if (!set) this.listeners.set(tenant, (set = new Set()));
    set.add(listener);
    this.count++;
  }

  remove(tenant: string, listener: Listener<T>): void {
    const set = this.listeners.get(tenant);
    if (!set?.delete(listener)) return;
    this.count--;
    if (set.size === 0) this.listeners.delete(tenant);
    if (this.count === 0 && !this.idleTimer && !this.closed)
      this.idleTimer = setTimeout(() => void this.stopFanOut(), this.opts.idleMs ?? 30_000);
  }

  /** First and last sequence the stream holds. */
  async bounds(): Promise<{ first: number; last: number }> {
    const info = await this.broker.jsm.streams.info(this.opts.stream);
    return { first: info.state.first_seq, last: info.state.last_seq };
  }

  /**
   * Hands `deliver` the tenant's messages from `fromSeq` on, as the stream holds them now (through
   * the gate), then returns. `stopped` ends it early.
   */
  async catchUp(tenant: string, fromSeq: number, deliver: Listener<T>, stopped: () => boolean): Promise<void> {
    await this.slots.take();
    try {
      await this.readFrom(tenant, fromSeq, deliver, stopped);
    } finally {
      this.slots.give();
    }
  }

  private async readFrom(tenant: string, fromSeq: number, deliver: Listener<T>, stopped: () => boolean) {
    const { jsm, js } = this.broker;
    const info = await jsm.consumers.add(this.opts.stream, {
      filter_subject: this.opts.tenantSubjects(tenant),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
      ack_policy: AckPolicy.None,
      inactive_threshold: nanos(60_000),
      mem_storage: true,
    });
    try {
      // What the stream held at creation: read that much, or until it runs dry (messages aged out meanwhile).
      let left = info.num_pending;
      const consumer = left > 0 ? await js.consumers.get(this.opts.stream, info.name) : null;
      while (consumer && left > 0 && !stopped()) {
        const batch = await consumer.fetch({ max_messages: Math.min(256, left), expires: 2_000 });
        let got = 0;
        for await (const msg of batch) {
          got++;
          left = msg.info.pending === 0 ? 0 : left - 1;
          if (stopped()) break;
          await this.opts.gate?.(msg.seq, stopped);
          const value = this.opts.decode(msg);
          if (value !== null) deliver({ seq: msg.seq, value });
        }
        if (got === 0) break;
      }
    } finally {
      await jsm.consumers.delete(this.opts.stream, info.name).catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await this.stopFanOut();
  }

  private async start(): Promise<void> {
    const { last } = await this.bounds();
    const after = Math.min(last, (await this.opts.startAfter?.(last)) ?? last);
    this.startSeq = after + 1;
    this.lastDispatched = after;
    void this.run(after + 1, ++this.generation);
  }

  /** The fan-out loop; after an error it starts again after the last message it handed on. */
  private async run(from: number, generation: number): Promise<void> {
    const running = () => generation === this.generation && !this.closed;
    while (running()) {
      try {
        // The whole stream (its subjects are allSubjects): filter_subjects needs nats-server 2.10.
        const consumer = await this.broker.js.consumers.get(this.opts.stream, {
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: from,
        });
        const messages = (this.messages = await consumer.consume({ max_messages: 512 }));
        for await (const msg of messages) {
          await this.opts.gate?.(msg.seq, () => !running());
          if (!running()) break;
          this.dispatch(msg);
          from = msg.seq + 1;
        }
      } catch (err) {
        if (!running()) break;
        log.warn({ err: (err as Error).message, stream: this.opts.stream }, "live stream feed failed; restarting");
        await sleep(1_000);
      }
    }
  }

  private dispatch(msg: JsMsg): void {
    this.lastDispatched = msg.seq;
    const tenant = this.opts.tenantOf(msg.subject);
    const set = tenant === null ? undefined : this.listeners.get(tenant);
    if (!set) return; // nobody of that tenant listens: not even decoded
    const value = this.opts.decode(msg);
    if (value === null) return;
    for (const listener of [...set]) listener({ seq: msg.seq, value });
  }

  private async stopFanOut(): Promise<void> {
    this.idleTimer = null;
    if (this.count > 0 && !this.closed) return;
    this.starting = null;
    this.generation++;
    const m = this.messages;
    this.messages = null;
    this.startSeq = Number.POSITIVE_INFINITY;
    await m?.close().catch(() => {});
  }
}

/**
 * "Committed up to": the writer acks a message only after COMMIT, so its durable consumer's ack
 * floor (every message up to it acked) says which messages are in the database. Polled, at most
 * once per pollMs and only while a message waits for it.
 */
export class CommitGate {
  private floor = 0;
  private polling: Promise<void> | null = null;

  constructor(
    private readonly broker: Broker,
    private readonly stream: string,
    private readonly durable: string,
    private readonly pollMs: number,
  ) {}

  async reach(seq: number, stopped: () => boolean): Promise<void> {
    while (this.floor < seq && !stopped()) {
      this.polling ??= this.poll().finally(() => {
        this.polling = null;
      });
      await this.polling;
    }
  }

  /** The ack floor now (null when the broker cannot tell). */
  async current(): Promise<number | null> {
    try {
      const info = await this.broker.jsm.consumers.info(this.stream, this.durable);
      this.floor = Math.max(this.floor, info.ack_floor.stream_seq);
      return this.floor;
    } catch {
      return null;
    }
  }

  private async poll(): Promise<void> {
    const before = this.floor;
    try {
      const info = await this.broker.jsm.consumers.info(this.stream, this.durable);
      this.floor = Math.max(this.floor, info.ack_floor.stream_seq);
    } catch {
      // No writer consumer yet, or the broker is away: nothing is committed as far as we can tell.
    }
    if (this.floor === before) await sleep(this.pollMs);
  }
}

/** A counting semaphore: take() waits while all slots are taken. */
class Slots {
  private readonly waiting: Array<() => void> = [];
  constructor(private free: number) {}
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}
