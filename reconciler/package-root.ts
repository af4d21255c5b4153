// Where bpfops's own files are, wherever it runs from: the checkout (TypeScript sources) or an
// installed package (compiled JavaScript under dist/). Both find the package root the same way.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/** The directory holding bpfops's package.json (native/, bpf/ and manifests/ live beside it). */
export function packageRoot(): string {
  if (root) return root;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "bpfops") return (root = dir);
    if (dirname(dir) === dir) throw new Error(`bpfops: no package.json of bpfops above ${fileURLToPath(import.meta.url)}`);
  }
}

let version: string | undefined;

/** bpfops's version, as its package.json says. */
export function packageVersion(): string {
  return (version ??= (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version);
}

/** Whether this code runs compiled (an installed package) rather than from the TypeScript sources. */
export const compiled = !import.meta.url.endsWith(".ts");
