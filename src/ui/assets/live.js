// Live updates for a view: the server's live stream through stream.js (openStream: GET
// /api/v1/stream, resumed with Last-Event-ID) when this server has it, with a slow poll as a safety
// net for what the stream does not carry (new devices' rows, freshness colours) and a poll at once
// when the stream says it could not resume (onReset: events were missed); without stream.js,
// polling at `ms`. Returns the stop function at once (the view may unmount before stream.js loads).
import { every } from "./lib.js";

export function liveOrPoll({ device, metric, onReading, onAlert, poll, ms = 5000, safetyMs = 30_000 }) {
  let stopped = false;
  let stopPoll = () => {};
  let closeStream = () => {};
  import("./stream.js")
    .then(({ openStream }) => {
      if (stopped) return;
      const onReset = () => poll().catch(() => {});
      const stream = openStream({ device, metric, onReading, onAlert, onReset });
      closeStream = typeof stream === "function" ? stream : () => stream?.close?.();
      stopPoll = every(safetyMs, poll);
    })
    .catch(() => {
      if (!stopped) stopPoll = every(ms, poll);
    });
  return () => {
    stopped = true;
    stopPoll();
    closeStream();
  };
}
