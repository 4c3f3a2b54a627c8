/**
 * A tiny map tile server for browser tests: every /{z}/{x}/{y}.png is a 256×256 PNG made in memory
 * (a pale square with a darker border, so screenshots show the tile grid). Counts the tiles served.
 */
import { deflateSync } from "node:zlib";

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, Bun.hash.crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A 256×256 RGB PNG: fill colour with a 1-pixel border colour. */
export function tilePng(fill = [214, 234, 220], border = [160, 190, 170]): Uint8Array {
  const size = 256;
  const raw = new Uint8Array(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    const row = y * (1 + size * 3);
    raw[row] = 0;
    for (let x = 0; x < size; x++) {
      const c = x === 0 || y === 0 ? border : fill;
      raw.set(c, row + 1 + x * 3);
    }
  }
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, size);
  hv.setUint32(4, size);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", new Uint8Array()),
  ];
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    png.set(p, at);
    at += p.length;
  }
  return png;
}

export interface TileServer extends AsyncDisposable {
  /** Leaflet URL template, e.g. http://127.0.0.1:1234/{z}/{x}/{y}.png */
  template: string;
  origin: string;
  /** Tiles served so far. */
  served(): number;
}

export function startTileServer(): TileServer {
  const png = tilePng();
  let served = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      if (!/^\/\d+\/\d+\/\d+\.png$/.test(new URL(req.url).pathname))
        return new Response("no such tile", { status: 404 });
      served++;
      return new Response(png, { headers: { "content-type": "image/png", "cache-control": "no-store" } });
    },
  });
  const origin = `http://127.0.0.1:${server.port}`;
  return {
    template: `${origin}/{z}/{x}/{y}.png`,
    origin,
    served: () => served,
    async [Symbol.asyncDispose]() {
      await server.stop(true);
    },
  };
}
