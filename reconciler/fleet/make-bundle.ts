// The controller's build of a fleet bundle: the revision built once for any host, and what that
// build read (manifests, entries files, objects) gathered into a Bundle, with what the next
// build is compared with (entries-delta.ts).
import { posix } from "node:path";
import { buildRevision } from "../agent/build.ts";
import { codeIdentity } from "../package-root.ts";
import type { Manifest } from "../../schemas/manifest.ts";
import type { RepoTree } from "../sources/repo-tree.ts";
import { withDigest, type Bundle } from "./bundle.ts";
import type { BuiltRevision } from "./entries-delta.ts";

/**
 * Builds the revision in tree for any host (selectors are each host's business) and bundles what
 * the build read, with what the build found (BuiltRevision). Throws ManifestInvalidError as a host's build
 * would: a broken revision is refused before any host sees it.
 */
export async function makeBundle(tree: RepoTree, manifestDir: string, cacheDir: string, signal?: AbortSignal): Promise<{ bundle: Bundle; built: BuiltRevision }> {
  const build = await buildRevision(tree, { manifestDir, labels: {}, cacheDir, anyHost: true, ...(signal ? { signal } : {}) });
  const files = new Map<string, Buffer>();
  const prebuilt = new Set<string>();
  const parsed: Record<string, Manifest[]> = {};
  for (const m of build.manifests) {
    if (!files.has(m.file)) files.set(m.file, (await tree.read(m.file))!);
    (parsed[m.file] ??= []).push(m.manifest);
    if (m.manifest.kind === "Map" && m.manifest.spec.entriesFile) {
      const p = posix.normalize(posix.join(posix.dirname(m.file), m.manifest.spec.entriesFile));
      files.set(p, (await tree.read(p))!);
    }
  }
  for (const [path, bytes] of build.objects) {
    files.set(path, bytes);
    // (a source built with build options of its own is known as <path>.bpf.c@<digest>)
    if (/\.bpf\.c(@[0-9a-f]+)?$/.test(path)) prebuilt.add(path);
  }
  const objects = Object.fromEntries([...(build.objectFacts ?? [])].filter(([path]) => files.has(path)));
  const bundle = withDigest({ manifestDir, files, prebuilt, parsed: { by: codeIdentity(), files: parsed, objects } });
  return { bundle, built: { digest: bundle.digest, manifests: build.manifests, objects: build.objects, mapEntries: build.mapEntries ?? new Map() } };
}
