// The live stream (GET /api/v1/stream, docs/stream.md) for the dashboard: Server-Sent Events read
// with fetch() so the key travels in the Authorization header (EventSource cannot send one, and
// keys never go into URLs). Resumes with Last-Event-ID after any break, backing off on errors.
//
//   const s = openStream({ device: ["truck-1"], metric: ["speed"], onReading, onAlert });
//   ...; s.close();
//
// onReading({device_id, ts, location: {lat, lon} | null, metrics, attributes, event_id})
// onAlert({event: "alert.opened" | "alert.acknowledged" | "alert.resolved", alert})
// onReset({reason, message}): the position could not be resumed (some events were missed:
//   reload what the view shows from the API). onStatus("open" | "retrying" | "closed", detail).
const KEY = "telemetry.key";
const MIN_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;

export function openStream(opts = {}) {
  const { onReading = () => {}, onAlert = () => {}, onReset = () => {}, onStatus = () => {} } = opts;
  const key = opts.key ?? globalThis.sessionStorage?.getItem(KEY);
  const base = opts.baseUrl ?? "";
  const params = new URLSearchParams();
  for (const d of [].concat(opts.device ?? [])) params.append("device", d);
  for (const m of [].concat(opts.metric ?? [])) params.append("metric", m);
  const url = `${base}/api/v1/stream${params.size ? `?${params}` : ""}`;
  let lastEventId = opts.lastEventId ?? null;
  let closed = false;
  let attempt = 0;
  let abort = null;
  let timer = null;

  const dispatch = (event, data) => {
    if (event === "reading") onReading(data);
    else if (event === "alert") onAlert(data);
    else if (event === "reset") onReset(data);
    else if (event === "open") onStatus("open", data);
  };

  const later = (ms, detail) => {
    if (closed) return;
    onStatus("retrying", detail);
    timer = setTimeout(run, ms);
  };
  const backoff = () => {
    const ceiling = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(attempt++, 10));
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  };

  async function run() {
    if (closed) return;
    abort = new AbortController();
    const headers = { accept: "text/event-stream", authorization: `Bearer ${key}` };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    let res;
    try {
      res = await fetch(url, { headers, signal: abort.signal, cache: "no-store" });
    } catch (err) {
      return later(backoff(), String(err));
    }
    if (res.status !== 200) return refused(res);
    try {
      await read(res.body);
    } catch {
      // the connection broke (or close() aborted it)
    }
    if (!closed) later(backoff() / 4, "connection ended");
  }

  async function refused(res) {
    const body = await res.json().catch(() => null);
    const code = body?.error?.code;
    if (res.status === 401) {
      closed = true;
      globalThis.dispatchEvent?.(new CustomEvent("telemetry:unauthorized"));
      return onStatus("closed", code);
    }
    if (code === "invalid_last_event_id") {
      lastEventId = null;
      return later(0, code);
    }
    if (res.status === 400 || res.status === 403) {
      closed = true;
      return onStatus("closed", code); // a bad filter or key kind: retrying will not help
    }
    const retryAfter = Number(res.headers.get("retry-after"));
    later(retryAfter > 0 ? retryAfter * 1000 : backoff(), code ?? `HTTP ${res.status}`);
  }

  async function read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += value.replace(/\r\n?/g, "\n");
      for (let cut = text.indexOf("\n\n"); cut >= 0; cut = text.indexOf("\n\n")) {
        block(text.slice(0, cut));
        text = text.slice(cut + 2);
      }
    }
  }

  function block(lines) {
    let event = "message";
    let data = null;
    for (const line of lines.split("\n")) {
      if (line === "" || line.startsWith(":")) continue; // heartbeat comments
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") lastEventId = value;
      else if (field === "event") event = value;
      else if (field === "data") data = data === null ? value : `${data}\n${value}`;
    }
    if (data === null) return;
    attempt = 0; // events flow again: the next break starts its backoff from the bottom
    dispatch(event, JSON.parse(data));
  }

  run();
  return {
    /** The id to resume from (also after close(), to open again later where this one stopped). */
    get lastEventId() {
      return lastEventId;
    },
    /** Drops the connection and opens it again from the last event (e.g. after the page was hidden). */
    reconnect() {
      clearTimeout(timer);
      abort?.abort();
    },
    close() {
      closed = true;
      clearTimeout(timer);
      abort?.abort();
      onStatus("closed");
    },
  };
}
