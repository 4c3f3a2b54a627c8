/**
 * The structure drawn from the imports of src/ (docs/decisions/0300-folders-and-dependencies.md):
 * every top-level folder is a role, shared, or a composition root; no folder cycles; no role
 * imports another role; shared folders import no role; core/ is pure; only config/ reads the
 * environment.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../../src");

/** Folders that do one job of the server; they depend on shared folders only. */
const ROLES = ["ingest", "writer", "evaluator", "notify", "api", "mqtt", "ui", "replay"];
/** Contracts, clients and plumbing every role may use. */
const SHARED = ["core", "config", "lib", "db", "nats", "pipeline", "http", "openapi", "tenants", "embedded"];
/** Composition roots and entry points: they wire everything and may import anything. */
const ROOTS = ["server", "cli"];

/** Role-to-role imports allowed on purpose: replay re-runs the writer's and evaluator's code on stored messages. */
const ALLOWED_ROLE_EDGES = ["replay -> writer", "replay -> evaluator"];
/**
 * Imports between roles still waiting for the HTTP routes to be declared in one place: routes
 * mounted from other role folders, and openapi re-listing every route. An entry no longer found in
 * the code fails the test, so this list only shrinks.
 */
const PENDING_EDGES: string[] = [];

/** Files outside config/ that read process.env, and why. */
const ENV_EXCEPTIONS: Record<string, string> = {
  "embedded/process.ts":
    "finds executables on the OS search path (PATH) and lets supervised children inherit the environment",
};

/** Modules core/ must not import: file system, network, processes, the database and broker clients. */
const IO_MODULES =
  /^(node:)?(fs|fs\/promises|net|http|https|http2|tls|dgram|dns|child_process|cluster|worker_threads|readline)$|^(postgres|drizzle-orm|hono|pino|prom-client)(\/|$)|^@nats-io\/|^@unni-craftsman\/|^@electric-sql\//;
/** Bun's and the platform's I/O globals. */
const IO_GLOBALS = /\bBun\.(file|write|spawn|spawnSync|serve|connect|listen|udpSocket|\$)\b|\bfetch\(|\bprocess\.env\b/;

interface Import {
  from: string; // file, relative to src/
  spec: string;
  /** Resolved path relative to src/ for a relative import, else null (a package). */
  target: string | null;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(name) ? [path] : [];
  });
}

/** Comments removed, so an example in a doc comment is not an import. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

const IMPORT_PATTERNS = [
  /(?:^|[\s;])(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/g,
  /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  /(?:^|[\s;])import\s*["']([^"']+)["']/g,
];

function importsOf(file: string): Import[] {
  const text = code(readFileSync(file, "utf8"));
  const from = relative(SRC, file);
  const specs = new Set(IMPORT_PATTERNS.flatMap((p) => [...text.matchAll(p)].map((m) => m[1]!)));
  return [...specs].map((spec) => ({
    from,
    spec,
    target: spec.startsWith(".") ? relative(SRC, resolve(dirname(file), spec)) : null,
  }));
}

const FILES = sourceFiles(SRC);
const IMPORTS = FILES.flatMap(importsOf);
const folderOf = (path: string) => (path.includes("/") && !path.startsWith("..") ? path.split("/")[0]! : null);

/** Folder -> folders it imports (inside src/ only), with one example file import per edge. */
function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const i of IMPORTS) {
    const a = folderOf(i.from);
    const b = i.target === null ? null : folderOf(i.target);
    if (!a || !b || a === b) continue;
    if (!graph.has(a)) graph.set(a, new Map());
    if (!graph.get(a)!.has(b)) graph.get(a)!.set(b, `${i.from} imports ${i.target}`);
  }
  return graph;
}

const GRAPH = folderGraph();
const edges = () =>
  [...GRAPH].flatMap(([a, to]) => [...to].map(([b, example]) => ({ edge: `${a} -> ${b}`, a, b, example })));

/** The strongly connected groups of more than one folder (Tarjan), i.e. the cycles. */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const group: string[] = [];
      let w: string;
      do group.push((w = stack.pop()!));
      while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

describe("the structure drawn from the imports of src/", () => {
  test("sees the imports (the parser is not blind)", () => {
    expect(FILES.length).toBeGreaterThan(100);
    expect(edges().some((e) => e.edge === "server -> writer")).toBe(true);
    expect(IMPORTS.some((i) => i.from === "core/record.ts" && i.spec === "zod")).toBe(true);
  });

  test("every top-level folder is a role, shared or a composition root", () => {
    const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
    const classified = [...ROLES, ...SHARED, ...ROOTS];
    expect(folders.filter((f) => !classified.includes(f))).toEqual([]);
    expect(classified.filter((f) => !folders.includes(f))).toEqual([]);
  });

  test("no role imports another role (except replay driving the writer and evaluator)", () => {
    const bad = edges().filter(
      (e) =>
        ROLES.includes(e.a) &&
        ROLES.includes(e.b) &&
        !ALLOWED_ROLE_EDGES.includes(e.edge) &&
        !PENDING_EDGES.includes(e.edge),
    );
    expect(bad.map((e) => e.example)).toEqual([]);
  });

  test("shared folders import no role and no composition root", () => {
    const bad = edges().filter((e) => SHARED.includes(e.a) && !SHARED.includes(e.b));
    expect(bad.map((e) => e.example)).toEqual([]);
  });

  test("the pending role-to-role imports still exist (remove an entry once its import is gone)", () => {
    const present = new Set(edges().map((e) => e.edge));
    expect(PENDING_EDGES.filter((e) => !present.has(e))).toEqual([]);
  });

  test("no cycles between folders", () => {
    const graph = new Map<string, string[]>();
    for (const e of edges()) if (!PENDING_EDGES.includes(e.edge)) graph.set(e.a, [...(graph.get(e.a) ?? []), e.b]);
    expect(cycles(graph)).toEqual([]);
  });

  test("no import cycles between the files of core/", () => {
    const graph = new Map<string, string[]>();
    for (const i of IMPORTS)
      if (i.from.startsWith("core/") && i.target?.startsWith("core/"))
        graph.set(i.from, [...(graph.get(i.from) ?? []), i.target]);
    expect(cycles(graph)).toEqual([]);
  });

  test("core/ imports nothing outside core/ and no I/O module", () => {
    const core = IMPORTS.filter((i) => i.from.startsWith("core/"));
    expect(
      core
        .filter((i) => i.target !== null && !i.target.startsWith("core/"))
        .map((i) => `${i.from} imports ${i.target}`),
    ).toEqual([]);
    expect(
      core.filter((i) => i.target === null && IO_MODULES.test(i.spec)).map((i) => `${i.from} imports ${i.spec}`),
    ).toEqual([]);
  });

  test("core/ uses no I/O globals", () => {
    const bad = FILES.filter(
      (f) => relative(SRC, f).startsWith("core/") && IO_GLOBALS.test(code(readFileSync(f, "utf8"))),
    );
    expect(bad.map((f) => relative(SRC, f))).toEqual([]);
  });

  test("only config/ reads the environment (listed exceptions aside)", () => {
    const readers = FILES.map((f) => relative(SRC, f)).filter((f) =>
      /\bprocess\.env\b|\bBun\.env\b|\bimport\.meta\.env\b/.test(code(readFileSync(join(SRC, f), "utf8"))),
    );
    expect(readers.filter((f) => !f.startsWith("config/") && !(f in ENV_EXCEPTIONS))).toEqual([]);
    expect(Object.keys(ENV_EXCEPTIONS).filter((f) => !readers.includes(f))).toEqual([]);
  });
});
