/**
 * One live-stream client: its position in both feeds, its filter, and its SSE body. Joining a
 * feed buffers what the fan-out hands over while the catch-up reads the stream, then drains the
 * buffer; every item is checked against the position, so nothing is written twice, and the
 * buffer's bound is kept by catching up again instead of holding more (decision 0620).
 */
import type { AlertPayload } from "../db/outbox.ts";
import type { Envelope } from "../core/envelope.ts";
import {
  alertMatches,
  type Cursor,
  formatCursor,
  isAfter,
  readingEvents,
  sseEvent,
  type StreamFilter,
} from "../core/live-stream.ts";
import type { Feed, FeedItem, Listener } from "./stream-feed.ts";

/** Live items held per feed while a session catches up; beyond, it catches up once more. */
const BUFFER_ITEMS = 2_000;
const encoder = new TextEncoder();

interface Joined<T> {
  feed: Feed<T>;
  listener: Listener<T>;
  buffer: FeedItem<T>[] | null;
  overflowed: boolean;
}

export class Session {
  closed = false;
  private readonly joined: Joined<any>[] = [];
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  readonly body: ReadableStream<Uint8Array>;

  constructor(
    readonly tenant: string,
    readonly filter: StreamFilter,
    public cursor: Cursor,
    /** Bytes queued for a client that does not read; beyond, the session is ended (it resumes by id). */
    maxQueuedBytes: number,
    private readonly onClose: (s: Session) => void,
  ) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c;
        },
        cancel: () => this.close(),
      },
      { highWaterMark: maxQueuedBytes, size: (chunk) => chunk?.byteLength ?? 0 },
    );
  }

  get id(): string {
    return formatCursor(this.cursor);
  }

  write(text: string): void {
    if (this.closed) return;
    try {
      this.controller.enqueue(encoder.encode(text));
      if ((this.controller.desiredSize ?? 0) < 0) this.close(); // a reader this slow resumes later
    } catch {
      this.close();
    }
  }

  event(name: string, data: unknown): void {
    this.write(sseEvent(this.id, name, JSON.stringify(data)));
  }

  /** Joins a feed at the session's position: catch-up when the fan-out has passed it, then live. */
  async join<T>(feed: Feed<T>, next: () => number, emit: (item: FeedItem<T>) => void): Promise<void> {
    const j: Joined<T> = { feed, buffer: [], overflowed: false, listener: () => {} };
    j.listener = (item) => {
      if (j.buffer === null) return emit(item);
      if (j.buffer.length >= BUFFER_ITEMS) {
        j.buffer = [];
        j.overflowed = true;
      } else j.buffer.push(item);
    };
    await feed.ensureRunning();
    if (this.closed) return;
    feed.add(this.tenant, j.listener);
    this.joined.push(j);
    // The fan-out hands on everything after lastDispatched, from startSeq on: nothing to read first when the position is there.
    let behind = next() <= feed.lastDispatched || next() < feed.startSeq;
    while (behind && !this.closed) {
      j.overflowed = false;
      await feed.catchUp(this.tenant, next(), emit, () => this.closed);
      behind = j.overflowed;
    }
    const held = j.buffer ?? [];
    j.buffer = null;
    for (const item of held) emit(item);
  }

  emitReadings = (item: FeedItem<Envelope>): void => {
    for (const { index, data } of readingEvents(item.value, this.filter)) {
      if (!isAfter(this.cursor, item.seq, index)) continue;
      this.cursor = { ...this.cursor, seq: item.seq, index };
      this.event("reading", data);
    }
    // A message the filter dropped (or whose last reading was written) is done.
    if (item.seq > this.cursor.seq || (item.seq === this.cursor.seq && this.cursor.index !== null))
      this.cursor = { ...this.cursor, seq: item.seq, index: null };
  };

  emitAlert = (item: FeedItem<AlertPayload>): void => {
    if (item.seq <= this.cursor.alertSeq) return;
    this.cursor = { ...this.cursor, alertSeq: item.seq };
    const { event, alert } = item.value;
    if (!alertMatches(alert as never, this.filter)) return;
    this.event("alert", { event, alert });
  };

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const j of this.joined) j.feed.remove(this.tenant, j.listener);
    try {
      this.controller.close();
    } catch {}
    this.onClose(this);
  }
}
