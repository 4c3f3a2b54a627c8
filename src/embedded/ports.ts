/**
 * Is a loopback TCP port free for a child we are about to start, and if not, who holds it? A busy
 * port is an error at start naming the port and (when /proc tells) the process, never a restart loop.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createServer } from "node:net";
import { pidCommandLine } from "./process.ts";

/** Resolves true when `host:port` can be bound right now (the probe socket is closed again). */
export function portBindable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** "pid 123 (nats-server -p 4222)" for the process listening on `port`, if this user may see it. */
export function describePortHolder(port: number): string | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  for (const entry of safeReaddir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    for (const fd of safeReaddir(`/proc/${entry}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        const cmd = pidCommandLine(Number(entry));
        return `pid ${entry}${cmd ? ` (${cmd.length > 120 ? `${cmd.slice(0, 117)}...` : cmd})` : ""}`;
      }
    }
  }
  return undefined;
}

/**
 * Throws `what` + the port and its holder unless `host:port` is free; `fix` says what to change.
 * Checked before every spawn; the child's own bind and the identity check after it close the race.
 */
export async function assertPortFree(host: string, port: number, what: string, fix: string): Promise<void> {
  if (await portBindable(host, port)) return;
  const holder = describePortHolder(port);
  throw new Error(`${what}: port ${port} on ${host} is already in use${holder ? ` by ${holder}` : ""}; ${fix}`);
}

/** Socket inodes in LISTEN state (0A) on `port`, from /proc/net/tcp and tcp6. */
function listeningInodes(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === "0A" && fields[9] && fields[9] !== "0")
        inodes.add(fields[9]);
    }
  }
  return inodes;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
