/**
 * The HTTP latency floor of the single-record phase: bench/load.ts against a Bun server that reads
 * the body and answers 202 at once (no auth, no broker), in its own process like the real server.
 */
import { join } from "node:path";
import { ROOT, runLoad } from "./env.ts";
import type { LoadResult } from "./load.ts";

if (import.meta.main) {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      await req.text();
      return Response.json({ accepted: 1 }, { status: 202 });
    },
  });
  console.log(server.port);
}

export async function httpFloor(rate: number, seconds: number): Promise<LoadResult> {
  const proc = Bun.spawn({ cmd: [process.execPath, join(ROOT, "bench/floor.ts")], stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  const port = Number(new TextDecoder().decode(value).trim());
  try {
    return await runLoad(`http://127.0.0.1:${port}`, "single", "floor", seconds, rate);
  } finally {
    proc.kill();
    await proc.exited;
  }
}
