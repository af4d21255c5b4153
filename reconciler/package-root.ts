// bpfops itself, wherever it runs from (the checkout's TypeScript sources, or an installed package's
// compiled JavaScript under dist/): where its own files are, its version, and which code it is.
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
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

/**
 * A digest of bpfops's own TypeScript (every .ts file under reconciler/ and schemas/, by path and
 * content): two copies with the same digest run the same code. The build records it
 * (scripts/write-build-info.mjs), since an installed package has no sources.
 */
export function sourcesDigest(root = packageRoot()): string {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.isFile() && e.name.endsWith(".ts")) files.push(join(dir, e.name));
    }
  };
  for (const dir of ["reconciler", "schemas"]) if (existsSync(join(root, dir))) walk(join(root, dir));
  const h = createHash("sha256");
  for (const f of files.map((x) => relative(root, x)).sort()) h.update(`${f}\0`).update(readFileSync(join(root, f))).update("\0");
  return h.digest("hex");
}

/** What the build recorded (scripts/write-build-info.mjs), or undefined where there is no build. */
export function buildInfo(): { version?: string; commit?: string | null; sources?: string; builtAt?: string } | undefined {
  try {
    return JSON.parse(readFileSync(join(packageRoot(), "dist/build-info.json"), "utf8")) as ReturnType<typeof buildInfo>;
  } catch {
    return undefined;
  }
}

let identity: string | undefined;

/**
 * Which bpfops this is, for trusting what another one found (a fleet bundle's parsed manifests and
 * object facts): its version and the digest of its sources, as the build recorded it (an installed
 * package) or read from the sources (a checkout). Two development trees of one version differ.
 */
export function codeIdentity(): string {
  if (identity) return identity;
  const sources = compiled ? buildInfo()?.sources : sourcesDigest();
  // (unknown sources, no build record: a value no other process has, so that nothing is trusted on a guess)
  return (identity = `${packageVersion()}+${sources ?? `unknown-${randomUUID()}`}`);
}
