// A fleet bundle as a repository tree, so that reconcileOnce applies it as it would a commit:
// read-only, nothing outside it, its .bpf.c sources already compiled, its manifests parsed and its
// objects inspected.
import type { Bundle } from "../fleet/bundle.ts";
import { codeIdentity } from "../package-root.ts";
import type { RepoTree } from "./repo-tree.ts";

/** The bundle as a repository tree for reconcileOnce: read-only, nothing outside it. */
export function bundleTree(b: Bundle, revision: string): RepoTree {
  // What the controller's build found, when it runs this same bpfops (another's schema may differ).
  const parsed = b.parsed?.by === codeIdentity() ? b.parsed : undefined;
  const under = (dir: string) => (p: string) => dir === "." || dir === "" || p.startsWith(dir.replace(/\/$/, "") + "/");
  return {
    describe: `bundle ${b.digest.slice(0, 19)} (${revision})`,
    revision: b.digest,
    async listFiles(dir) {
      return [...b.files.keys()].filter(under(dir)).sort();
    },
    async hasDir(dir) {
      return [...b.files.keys()].some(under(dir));
    },
    async read(path) {
      return b.files.get(path) ?? null;
    },
    async whyOutside() {
      return null;
    },
    prebuilt(path) {
      return b.prebuilt.has(path) ? b.files.get(path)! : null;
    },
    parsedManifests(file) {
      return parsed?.files[file] ?? null;
    },
    objectFacts(path) {
      return parsed?.objects?.[path] ?? null;
    },
  };
}
