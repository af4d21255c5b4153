// A digest remembered in the cache directory under a name that says what it is a digest of, so
// that work done once (hashing the kernel's BTF, walking an object's BTF) is not done at every run.
// A cache this user cannot write costs time, nothing else.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** The sha256 hex noted at path, or compute()'s, noted there for next time. */
export function notedDigest(path: string, compute: () => string): string {
  try {
    const noted = readFileSync(path, "utf8").trim();
    if (/^[0-9a-f]{64}$/.test(noted)) return noted;
  } catch {
    // not noted yet
  }
  const digest = compute();
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(`${path}.${process.pid}`, digest + "\n");
    renameSync(`${path}.${process.pid}`, path);
  } catch {
    // another user's cache: computed again next time
  }
  return digest;
}
