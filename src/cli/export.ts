/**
 * `telemetry export`: GET /api/v1/readings/export from a running server, streamed to stdout or a
 * file (gzip on the wire, decoded here). The key is read from a file (or stdin with `-`), never
 * taken from the command line, where `ps` would show it.
 */
import { createWriteStream, readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { defineCommand } from "citty";
import { fail } from "./common.ts";

export const exportCommand = defineCommand({
  meta: { name: "export", description: "Export readings (CSV or NDJSON) from a running server" },
  args: {
    url: { type: "string", description: "The server's base URL", default: "http://127.0.0.1:8080" },
    "key-file": { type: "string", description: "File holding the tenant API key ('-' for stdin)", required: true },
    from: { type: "string", description: "Start, inclusive: RFC 3339 or epoch ms" },
    to: { type: "string", description: "End, exclusive: RFC 3339 or epoch ms (default: now)" },
    device: { type: "string", description: "Device ids, comma-separated" },
    metric: { type: "string", description: "Metric names, comma-separated" },
    format: { type: "string", description: "csv or ndjson", default: "csv" },
    output: { type: "string", alias: "o", description: "Write to this file instead of stdout" },
  },
  async run({ args }) {
    try {
      const key = readFileSync(args["key-file"] === "-" ? 0 : args["key-file"], "utf8").trim();
      if (!key) throw new Error("the key file is empty");
      const url = new URL("/api/v1/readings/export", args.url);
      for (const name of ["from", "to", "device", "metric", "format"] as const)
        if (args[name] !== undefined) url.searchParams.set(name, args[name]);
      const res = await fetch(url, { headers: { authorization: `Bearer ${key}`, "accept-encoding": "gzip" } });
      if (!res.ok || !res.body) {
        const body = await res.text();
        let message = body.slice(0, 500);
        try {
          const e = JSON.parse(body).error;
          message = `${e.code}: ${e.message}`;
        } catch {}
        throw new Error(`export failed: HTTP ${res.status} ${message}`);
      }
      const out = args.output ? createWriteStream(args.output) : process.stdout;
      await pipeline(Readable.fromWeb(res.body as never), out);
    } catch (err) {
      fail(err);
    }
  },
});
