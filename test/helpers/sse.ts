/** A Server-Sent Events client over fetch (as the dashboard reads GET /api/v1/stream), for tests. */
import { TEST_KEY } from "./server.ts";

export interface SseEvent {
  id: string | null;
  event: string;
  data: any;
}

export interface SseClient {
  status: number;
  body: any;
  events: SseEvent[];
  /** Comment lines seen (heartbeats). */
  comments: number;
  /** Ends when the server ends the response. */
  ended: Promise<void>;
  close(): void;
  of(event: string): SseEvent[];
  lastId(): string | null;
}

export async function openSse(
  server: { url: string },
  query = "",
  opts: { key?: string; lastEventId?: string } = {},
): Promise<SseClient> {
  const abort = new AbortController();
  const headers: Record<string, string> = {
    authorization: `Bearer ${opts.key ?? TEST_KEY}`,
    accept: "text/event-stream",
  };
  if (opts.lastEventId) headers["last-event-id"] = opts.lastEventId;
  const res = await fetch(`${server.url}/api/v1/stream${query ? `?${query}` : ""}`, { headers, signal: abort.signal });
  const client: SseClient = {
    status: res.status,
    body: null,
    events: [],
    comments: 0,
    ended: Promise.resolve(),
    close: () => abort.abort(),
    of: (event) => client.events.filter((e) => e.event === event),
    lastId: () => client.events.findLast((e) => e.id !== null)?.id ?? null,
  };
  if (res.status !== 200) {
    client.body = await res.json();
    return client;
  }
  client.ended = (async () => {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += value;
        let cut = text.indexOf("\n\n");
        while (cut >= 0) {
          parseBlock(text.slice(0, cut), client);
          text = text.slice(cut + 2);
          cut = text.indexOf("\n\n");
        }
      }
    } catch {
      // aborted
    }
  })();
  return client;
}

function parseBlock(block: string, client: SseClient) {
  let id: string | null = null;
  let event = "message";
  const data: string[] = [];
  let fields = 0;
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) {
      client.comments++;
      continue;
    }
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    fields++;
    if (name === "id") id = value;
    else if (name === "event") event = value;
    else if (name === "data") data.push(value);
  }
  if (fields === 0 || data.length === 0) return; // comments, retry:
  client.events.push({ id, event, data: JSON.parse(data.join("\n")) });
}
