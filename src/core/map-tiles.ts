/**
 * The dashboard map's tile URL template (Leaflet's syntax: {z}/{x}/{y}, optional {s} subdomain and
 * {r} retina suffix) and what the page's Content-Security-Policy must allow for it. Pure.
 */

export interface TileSource {
  template: string;
  /** The img-src CSP source for the tiles: an origin, `https://*.host` for {s}, or 'self' (a path on this server). */
  cspSource: string;
}

/** Checks a template; returns the CSP source, or an error message. */
export function tileSource(template: string): TileSource | { error: string } {
  const t = template.trim();
  for (const p of ["{z}", "{x}", "{y}"])
    if (!t.includes(p)) return { error: `must contain {z}, {x} and {y}, got ${JSON.stringify(template)}` };
  if (/[\s"'<>\\;,]/.test(t)) return { error: "must not contain spaces, quotes, commas, semicolons or < > \\" };
  if (t.startsWith("/") && !t.startsWith("//")) return { template: t, cspSource: "'self'" };
  const hostPart = t.replace(/^(https?:\/\/)\{s\}\./, "$1x.").split("/")[2] ?? "";
  if (hostPart.includes("{"))
    return { error: "{s} is supported only as the first label of the host, e.g. https://{s}.tile.example.org/..." };
  let url: URL;
  try {
    url = new URL(t.replace(/^(https?:\/\/)\{s\}\./, "$1subdomain-placeholder.").replace(/\{[a-z]+\}/g, "0"));
  } catch {
    return { error: `must be an http(s) URL or a path on this server, got ${JSON.stringify(template)}` };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    return { error: `must be an http(s) URL or a path on this server, got ${JSON.stringify(template)}` };
  if (url.username || url.password) return { error: "must not carry credentials" };
  const host = url.host.replace(/^subdomain-placeholder\./, "*.");
  return { template: t, cspSource: `${url.protocol}//${host}` };
}
