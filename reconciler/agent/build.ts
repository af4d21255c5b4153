// The build step: from a repository tree to the desired state of this host. Reads and parses
// every manifest, resolves and compiles objects, inspects them, validates, and builds the desired
// spec; every problem in the repository is reported at once as a ManifestInvalidError.
import { setBounded } from "../core/bounded-map.ts";
import { createHash } from "node:crypto";
import { join, posix } from "node:path";
import { readFileSync } from "node:fs";
import { packageRoot } from "../package-root.ts";
import { XDP_DISPATCHER_OBJECT } from "../core/xdp-share.ts";
import { locatedFromParsed, parseManifestFile, LIMITS, type LocatedManifest } from "../core/parse-manifests.ts";
import { ManifestInvalidError, type ManifestIssue } from "../core/manifest-issues.ts";
import { whyNotBpfElf } from "../core/object-summary.ts";
import { objectIdentity } from "../core/object-identity.ts";
import { notedDigest } from "../sources/cache-note.ts";
import { validateManifests, type InspectedFacts, type ObjectFacts } from "../core/validate.ts";
import { buildDesired, checkSelection, type DesiredState } from "../core/desired.ts";
import type { ProgramManifest } from "../../schemas/manifest.ts";
import { repoPath, type RepoTree } from "../sources/repo-tree.ts";
import { compileBpfSource, CompileError } from "../sources/compile-bpf.ts";
import { inspectObject } from "../kernel/inspect.ts";
import type { OnProgress } from "../core/progress.ts";
import { parseEntriesFile, type EntriesFile } from "../core/entries-file.ts";
import { objectGlobalTypes, objectMapTypes, objectStructNames } from "../core/btf.ts";
import type { MapEntryHex } from "../core/plan.ts";

export interface BuildOptions {
  /** the directory of manifests inside the repository ("." for all of it) */
  manifestDir: string;
  /** this host's labels, for host selectors */
  labels: Record<string, string>;
  /** where compiled .bpf.c objects are cached */
  cacheDir: string;
  signal?: AbortSignal;
  /** each .bpf.c source as it is compiled (or found in the cache) */
  onProgress?: OnProgress;
  /** bytes one Map may ask for (maxEntries x (key + value)) */
  mapMemoryBudget?: number;
  /** build for any host (a fleet bundle): host selectors are not checked against labels */
  anyHost?: boolean;
}

export interface Build {
  desired: DesiredState;
  manifests: LocatedManifest[];
  /** object bytes by repository path, for loading */
  objects: Map<string, Buffer>;
  revision?: string;
  /** a build for any host (a fleet bundle): every Map's entries, whichever hosts select it */
  mapEntries?: Map<string, MapEntryHex[]>;
  /** a build for any host (a fleet bundle): what inspecting each object found, by its path in objects */
  objectFacts?: Map<string, InspectedFacts>;
}

/** Every manifest file under manifestDir, parsed; what does not parse is in issues. */
export async function readManifests(tree: RepoTree, manifestDir: string): Promise<{ manifests: LocatedManifest[]; issues: ManifestIssue[] }> {
  const issues: ManifestIssue[] = [];
  const files = (await tree.listFiles(manifestDir)).filter((p) => p.endsWith(".yaml") || p.endsWith(".yml"));
  if (files.length > LIMITS.files) {
    throw new ManifestInvalidError([{ code: "TooManyFiles", file: manifestDir, line: 1, column: 1, message: `${files.length} manifest files; at most ${LIMITS.files}` }]);
  }
  const manifests: LocatedManifest[] = [];
  for (const f of files) {
    const outside = await tree.whyOutside(f);
    if (outside) {
      issues.push({ code: "PathEscape", file: f, line: 1, column: 1, message: `manifest file ${outside}` });
      continue;
    }
    const bytes = (await tree.read(f)) ?? Buffer.alloc(0);
    // A fleet bundle's manifests come parsed: YAML and the schema are most of a host's build.
    const parsed = tree.parsedManifests?.(f);
    if (parsed) {
      manifests.push(...locatedFromParsed(f, parsed, bytes));
      continue;
    }
    const r = parseManifestFile(f, bytes);
    manifests.push(...r.manifests);
    issues.push(...r.issues);
  }
  return { manifests, issues };
}

export async function buildRevision(tree: RepoTree, opts: BuildOptions): Promise<Build> {
  const { manifests, issues } = await readManifests(tree, opts.manifestDir);

  const objects = new Map<string, ObjectFacts>();
  const bytesByPath = new Map<string, Buffer>();
  // Many programs share one object: resolve, compile and inspect each path once.
  const byPath = new Map<string, ObjectFacts>();
  const sources = new Set(manifests.flatMap((m) => (m.manifest.kind === "Program" && m.manifest.spec.object.endsWith(".bpf.c") ? [posix.join(posix.dirname(m.file), m.manifest.spec.object)] : [])));
  let compiled = 0;
  for (const m of manifests) {
    if (m.manifest.kind !== "Program") continue;
    const path = posix.join(posix.dirname(m.file), m.manifest.spec.object);
    const build = path.endsWith(".bpf.c") ? m.manifest.spec.build : undefined;
    // One source built with flags of its own is another object: keyed apart from the plain build.
    const key = build && (build.includes.length || Object.keys(build.defines).length || build.cflags.length) ? `${path}@${createHash("sha256").update(JSON.stringify(build)).digest("hex").slice(0, 12)}` : path;
    let facts = byPath.get(key);
    if (!facts && sources.has(path)) opts.onProgress?.({ phase: "compile", done: compiled++, total: sources.size, item: key });
    if (!facts) byPath.set(key, (facts = await resolveObject(tree, m.file, m.manifest.spec.object, opts, bytesByPath, key === path ? undefined : { key, build: build! })));
    objects.set(m.id, facts);
  }
  const entryFiles = new Map<string, EntriesFile>();
  for (const m of manifests) {
    if (m.manifest.kind !== "Map" || !m.manifest.spec.entriesFile) continue;
    const r = await readEntriesFile(tree, m, m.manifest.spec.entriesFile);
    if ("issue" in r) issues.push(r.issue);
    else {
      entryFiles.set(m.id, r.parsed);
      issues.push(...r.issues);
    }
  }
  const { validated, issues: crossIssues } = validateManifests(manifests, objects, { entryFiles, ...(opts.mapMemoryBudget ? { mapMemoryBudget: opts.mapMemoryBudget } : {}) });
  issues.push(...crossIssues);
  if (!issues.length && !opts.anyHost) issues.push(...checkSelection(validated, opts.labels));
  if (issues.length) throw new ManifestInvalidError(issues);
  // Ordered XDP Attachments share their hook through bpfops's dispatcher, an object of its own package.
  const shared = manifests.some((m) => m.manifest.kind === "Attachment" && m.manifest.spec.hook.type === "xdp" && m.manifest.spec.order);
  const dispatcher = shared ? inspectBytes(XDP_DISPATCHER_OBJECT, readFileSync(join(packageRoot(), "bpf", "xdp_dispatcher.o")), opts.cacheDir, bytesByPath) : undefined;
  if (dispatcher && !dispatcher.ok) throw new Error(`bpfops's XDP dispatcher (bpf/xdp_dispatcher.o): ${dispatcher.message}`);
  const objectFacts = opts.anyHost ? new Map([...byPath.values()].flatMap((f) => (f.ok ? [[f.path, inspectedFacts(f)] as const] : []))) : undefined;
  return { desired: buildDesired(validated, objects, opts.labels, dispatcher), manifests, objects: bytesByPath, ...(tree.revision ? { revision: tree.revision } : {}), ...(opts.anyHost ? { mapEntries: validated.entries, objectFacts } : {}) };
}

/** A Map's entriesFile, read from the tree the manifest is in (inside the repository only). */
async function readEntriesFile(tree: RepoTree, m: LocatedManifest, file: string): Promise<{ issue: ManifestIssue } | { parsed: EntriesFile; issues: ManifestIssue[] }> {
  const at = { file: m.file, ...m.locate(["spec", "entriesFile"]), manifest: m.id, field: "spec.entriesFile" };
  const path = repoPath(posix.join(posix.dirname(m.file), file));
  if (!path) return { issue: { code: "PathEscape", ...at, message: `entries file "${file}" leaves the repository` } };
  const outside = await tree.whyOutside(path);
  if (outside) return { issue: { code: "PathEscape", ...at, message: `entries file ${path} ${outside}` } };
  const bytes = await tree.read(path);
  if (!bytes) return { issue: { code: "EntriesFile", ...at, message: `no file ${path} in ${tree.describe}` } };
  return parseEntriesFile(path, bytes);
}

/**
 * objectIdentity, remembered in the cache under the digest of the bytes: it walks every BTF type
 * of the object, a tenth of a dry-run's time, for objects that rarely change between runs.
 */
function identityOf(bytes: Buffer, cacheDir: string): string {
  return notedDigest(join(cacheDir, "identity", createHash("sha256").update(bytes).digest("hex")), () => objectIdentity(bytes));
}

/**
 * An object's bytes (a .bpf.c source compiled, with its build options when it has its own: then
 * known by variant.key, the source's path and a digest of the options) and what inspecting it found.
 */
async function resolveObject(tree: RepoTree, manifestFile: string, object: string, opts: BuildOptions, bytesByPath: Map<string, Buffer>, variant?: { key: string; build: NonNullable<ProgramManifest["spec"]["build"]> }): Promise<ObjectFacts> {
  const source = repoPath(posix.join(posix.dirname(manifestFile), object));
  if (!source) return { ok: false, path: object, code: "PathEscape", message: `object path "${object}" leaves the repository` };
  const path = variant?.key ?? source;
  const outside = await tree.whyOutside(source);
  if (outside) return { ok: false, path, code: "PathEscape", message: `object ${source} ${outside}` };
  const raw = await tree.read(source);
  if (!raw) return { ok: false, path, code: "ObjectMissing", message: `no file ${source} in ${tree.describe}` };
  let bytes = raw;
  const prebuilt = source.endsWith(".bpf.c") ? (tree.prebuilt?.(path) ?? null) : null;
  if (prebuilt) bytes = prebuilt;
  else if (source.endsWith(".bpf.c")) {
    const includes: string[] = [];
    for (const [i, inc] of (variant?.build.includes ?? []).entries()) {
      const dir = repoPath(posix.join(posix.dirname(manifestFile), inc));
      const why = !dir ? "leaves the repository" : ((await tree.whyOutside(dir)) ?? ((await tree.hasDir(dir)) ? null : `is not a directory of ${tree.describe}`));
      if (why) return { ok: false, path, code: "PathEscape", message: `build.includes[${i}]: "${inc}" ${why}` };
      includes.push(dir!);
    }
    const build = variant ? { includes, defines: variant.build.defines, cflags: variant.build.cflags } : undefined;
    try {
      bytes = await compileBpfSource(tree, source, opts.cacheDir, { ...(opts.signal ? { signal: opts.signal } : {}), ...(build ? { build } : {}) });
    } catch (e) {
      return { ok: false, path, code: "CompileFailed", message: e instanceof CompileError ? e.message : `compile ${source}: ${(e as Error).message}` };
    }
  }
  return inspectBytes(path, bytes, opts.cacheDir, bytesByPath, tree.objectFacts?.(path));
}

/**
 * The facts of an object's bytes (kept by path in bytesByPath for loading), or why it is no object.
 * known: what the controller's build found in these same bytes (a fleet bundle's).
 */
function inspectBytes(path: string, bytes: Buffer, cacheDir: string, bytesByPath: Map<string, Buffer>, known?: InspectedFacts | null): ObjectFacts {
  const notElf = whyNotBpfElf(bytes);
  if (notElf) return { ok: false, path, code: "ObjectNotElf", message: `${path} is ${notElf}` };
  const name = posix.basename(path).replace(/\.(bpf\.c|o)(@[0-9a-f]+)?$/, "");
  const key = `${name}:${createHash("sha256").update(bytes).digest("hex")}`;
  let facts = known ?? inspected.get(key);
  if (!facts) {
    try {
      // The object's identity, not its bytes: a rebuild that only moved lines or comments is the same program.
      const globalTypes = Object.fromEntries(Object.entries(objectGlobalTypes(bytes)).flatMap(([g, v]) => (v.type ? [[g, v.type]] : [])));
      facts = { digest: identityOf(bytes, cacheDir), summary: inspectObject(bytes, name), mapTypes: objectMapTypes(bytes), structs: objectStructNames(bytes), globalTypes };
    } catch (e) {
      return { ok: false, path, code: "ObjectUnreadable", message: `libbpf cannot read ${path}: ${(e as Error).message}` };
    }
  }
  if (!inspected.has(key)) {
    setBounded(inspected, key, facts, 64);
  }
  bytesByPath.set(path, bytes);
  // A copy: later steps own what they are given.
  return { ok: true, path, ...structuredClone(facts) };
}

/**
 * What inspecting an object found, by its name and bytes: a long-running agent builds every new
 * revision (a fleet's rule change is a new bundle around the same objects), and libbpf's open and
 * the BTF walks are most of a build's time.
 */
const inspected = new Map<string, InspectedFacts>();

const inspectedFacts = ({ ok: _ok, path: _path, ...facts }: Extract<ObjectFacts, { ok: true }>): InspectedFacts => facts;
