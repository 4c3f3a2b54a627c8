/**
 * Load generator for the fault tests: `clients` concurrent clients POST NDJSON batches of
 * consecutive records and retry the SAME batch (same bytes) on 503 or a connection error, with a
 * short backoff, until it is answered 202. Any other status fails the run: it would be a bug.
 * Every answer (or connection error) is reported with the time it was sent and received.
 */

export interface Sent {
  batch: number;
  /** performance.now() just before fetch, and when the answer (or the error) came back. */
  sentAt: number;
  receivedAt: number;
  /** HTTP status, or 0 for a connection error / timeout. */
  status: number;
  error?: string;
  /** Event ids of a 202 answer (accepted and duplicate results). */
  eventIds?: string[];
}

export interface LoadOptions {
  /** Base URL; a function lets a test point the clients at a replacement server. */
  url: string | (() => string);
  key: string;
  /** Records 0 .. records-1 are sent, in batches of consecutive indexes. */
  records: number;
  clients: number;
  batch: number;
  /** NDJSON line of record i. */
  record: (i: number) => string;
  onResponse?: (r: Sent) => void;
  /** Keep the event ids of 202 answers in `Sent.eventIds` (costs memory). */
  wantIds?: boolean;
  backoffMs?: number;
  requestTimeoutMs?: number;
  /** The run fails when no batch has been accepted for this long (default 90 s): a stuck test fails, it does not hang. */
  stallMs?: number;
}

export interface LoadSummary {
  records: number;
  batches: number;
  requests: number;
  statuses: Record<string, number>;
  accepted: number;
  duplicate: number;
  /** Records a 202 reported as dead_lettered (kept in the dead-letter stream, not bound for the database). */
  deadLettered: number;
  seconds: number;
}

export interface LoadHandle {
  readonly done: Promise<LoadSummary>;
  /** Records whose batch has been answered 202. */
  readonly acceptedRecords: number;
  /** Ends the clients after their current request (a batch in flight is left unfinished). */
  stop(): void;
  /** `p`, but rejected at once if the load fails first (so a test does not wait out a timeout). */
  guard<T>(p: Promise<T>): Promise<T>;
}

interface State {
  next: number;
  acceptedRecords: number;
  lastAcceptAt: number;
  last?: Sent;
  stopped: boolean;
  summary: LoadSummary;
}

export function loadClients(opts: LoadOptions): LoadHandle {
  const batches = Math.ceil(opts.records / opts.batch);
  const started = performance.now();
  const state: State = {
    next: 0,
    acceptedRecords: 0,
    lastAcceptAt: started,
    stopped: false,
    summary: {
      records: opts.records,
      batches,
      requests: 0,
      statuses: {},
      accepted: 0,
      duplicate: 0,
      deadLettered: 0,
      seconds: 0,
    },
  };
  const clients = Promise.all(Array.from({ length: opts.clients }, () => client(opts, state, batches)));
  const watchdog = stallWatchdog(state, opts.stallMs ?? 90_000);
  const done = Promise.race([clients, watchdog.stalled])
    .then(() => {
      state.summary.seconds = Math.round((performance.now() - started) / 100) / 10;
      return state.summary;
    })
    .finally(() => {
      watchdog.stop();
      state.stopped = true;
    });
  done.catch(() => {}); // a test that fails elsewhere first need not also await this
  return {
    done,
    get acceptedRecords() {
      return state.acceptedRecords;
    },
    stop() {
      state.stopped = true;
    },
    guard<T>(p: Promise<T>): Promise<T> {
      return Promise.race([p, done.then(() => new Promise<never>(() => {}))]);
    },
  };
}

function stallWatchdog(state: State, stallMs: number): { stalled: Promise<never>; stop: () => void } {
  let timer: Timer | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      if (performance.now() - state.lastAcceptAt < stallMs) return;
      const last = state.last ? `last answer: ${state.last.status || state.last.error}` : "no answer yet";
      reject(
        new Error(
          `load stalled: no batch accepted for ${stallMs} ms (${state.acceptedRecords} records accepted; ${last}; statuses ${JSON.stringify(state.summary.statuses)})`,
        ),
      );
    }, 1_000);
  });
  stalled.catch(() => {}); // observed through the race in loadClients
  return { stalled, stop: () => clearInterval(timer) };
}

async function client(opts: LoadOptions, state: State, batches: number): Promise<void> {
  while (!state.stopped) {
    const b = state.next++;
    if (b >= batches) return;
    const from = b * opts.batch;
    const to = Math.min(from + opts.batch, opts.records);
    await sendUntilAccepted(opts, state, b, body(opts, from, to), to - from);
  }
}

function body(opts: LoadOptions, from: number, to: number): string {
  const lines: string[] = [];
  for (let i = from; i < to; i++) lines.push(opts.record(i));
  return `${lines.join("\n")}\n`;
}

async function sendUntilAccepted(
  opts: LoadOptions,
  state: State,
  batch: number,
  payload: string,
  size: number,
): Promise<void> {
  for (let attempt = 0; !state.stopped; attempt++) {
    const sent = await postOnce(opts, batch, payload);
    state.last = sent.sent;
    state.summary.requests++;
    const key = sent.status === 0 ? "error" : String(sent.status);
    state.summary.statuses[key] = (state.summary.statuses[key] ?? 0) + 1;
    if (sent.status === 202) {
      // dead_lettered records are counted, not retried (the server said 202): the row counts will show them missing.
      const counts = sent.counts!;
      if (counts.rejected !== 0 || counts.accepted + counts.duplicate + counts.deadLettered !== size) {
        throw new Error(
          `batch ${batch}: 202 with accepted=${counts.accepted} duplicate=${counts.duplicate} dead_lettered=${counts.deadLettered} rejected=${counts.rejected} of ${size}`,
        );
      }
      state.summary.accepted += counts.accepted;
      state.summary.duplicate += counts.duplicate;
      state.summary.deadLettered += counts.deadLettered;
      state.acceptedRecords += size;
      state.lastAcceptAt = performance.now();
      opts.onResponse?.(sent.sent);
      return;
    }
    opts.onResponse?.(sent.sent);
    if (sent.status !== 503 && sent.status !== 0) {
      throw new Error(`batch ${batch}: unexpected HTTP ${sent.status}: ${sent.text.slice(0, 300)}`);
    }
    const base = opts.backoffMs ?? 100;
    await Bun.sleep(Math.min(base * 2 ** Math.min(attempt, 3), 1_000) * (0.5 + Math.random() / 2));
  }
}

interface Outcome {
  status: number;
  text: string;
  sent: Sent;
  counts?: { accepted: number; duplicate: number; deadLettered: number; rejected: number };
}

async function postOnce(opts: LoadOptions, batch: number, payload: string): Promise<Outcome> {
  const url = typeof opts.url === "function" ? opts.url() : opts.url;
  const sentAt = performance.now();
  try {
    const res = await fetch(`${url}/api/v1/telemetry`, {
      method: "POST",
      headers: { authorization: `Bearer ${opts.key}`, "content-type": "application/x-ndjson" },
      body: payload,
      signal: AbortSignal.timeout(opts.requestTimeoutMs ?? 30_000),
    });
    const text = await res.text();
    const receivedAt = performance.now();
    const sent: Sent = { batch, sentAt, receivedAt, status: res.status };
    if (res.status !== 202) return { status: res.status, text, sent };
    const parsed = JSON.parse(text) as {
      accepted: number;
      duplicate: number;
      dead_lettered?: number;
      rejected: number;
      results: Array<{ event_id?: string }>;
    };
    if (opts.wantIds) sent.eventIds = parsed.results.flatMap((r) => (r.event_id ? [r.event_id] : []));
    return {
      status: 202,
      text,
      sent,
      counts: {
        accepted: parsed.accepted,
        duplicate: parsed.duplicate,
        deadLettered: parsed.dead_lettered ?? 0,
        rejected: parsed.rejected,
      },
    };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { status: 0, text: error, sent: { batch, sentAt, receivedAt: performance.now(), status: 0, error } };
  }
}
