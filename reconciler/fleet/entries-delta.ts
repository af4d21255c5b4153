// A revision that changes only Map entries (a new rule) goes to hosts as those entries: the
// controller finds one by comparing its build with the last good one, and an agent that runs the
// earlier revision puts the entries into its own build of it (no manifest parsed, no object read),
// from which the engine observes, plans and applies the map updates as for any revision.
import type { Build } from "../agent/build.ts";
import { canonicalJson } from "../core/desired.ts";
import type { LocatedManifest } from "../core/parse-manifests.ts";
import type { MapEntryHex } from "../core/plan.ts";

export interface EntriesDelta {
  /** the bundle digest the delta applies to: hosts that run another go the whole way */
  from: string;
  /** Map name -> every entry the Map holds in the new revision (encoded as the build encodes them) */
  maps: Record<string, MapEntryHex[]>;
}

/** What the controller keeps of a bundle it built, to compare the next one with. */
export interface BuiltRevision {
  digest: string;
  manifests: LocatedManifest[];
  /** object bytes by repository path */
  objects: Map<string, Buffer>;
  /** each Map's entries, as the build encoded them */
  mapEntries: Map<string, MapEntryHex[]>;
}

/**
 * Targets are written for every host: a delta bigger than this goes the whole way (a bundle is
 * fetched once per host either way).
 */
export const MAX_DELTA_BYTES = 128 * 1024;

/** What a host's build sees of the manifests: a Rollout is the controller's, no host's. */
const forHosts = (ms: LocatedManifest[]) => ms.filter((m) => m.manifest.kind !== "Rollout");

/** A manifest as it reads without its entries. */
const withoutEntries = (m: LocatedManifest): string => {
  const { manifest } = m;
  if (manifest.kind !== "Map") return canonicalJson(manifest);
  const { entries: _entries, ...spec } = manifest.spec;
  return canonicalJson({ ...manifest, spec });
};

/**
 * The delta from prev to next when the two differ, for hosts, in Map entries only (the same
 * manifests but for their entries and the Rollout, and the same objects byte for byte); undefined
 * when anything else differs, no entries do, or they are too many to send.
 */
export function entriesDelta(prev: BuiltRevision, next: BuiltRevision): EntriesDelta | undefined {
  const [was, now] = [forHosts(prev.manifests), forHosts(next.manifests)];
  if (was.length !== now.length || prev.objects.size !== next.objects.size) return undefined;
  const before = new Map(was.map((m) => [m.id, withoutEntries(m)]));
  for (const m of now) if (before.get(m.id) !== withoutEntries(m)) return undefined;
  for (const [path, bytes] of next.objects) if (!prev.objects.get(path)?.equals(bytes)) return undefined;
  const maps: Record<string, MapEntryHex[]> = {};
  let bytes = 0;
  // (a Map without entries may have no row)
  for (const name of new Set([...prev.mapEntries.keys(), ...next.mapEntries.keys()])) {
    const entries = next.mapEntries.get(name) ?? [];
    if (canonicalJson(prev.mapEntries.get(name) ?? []) === canonicalJson(entries)) continue;
    maps[name] = entries;
    for (const e of entries) bytes += e.key.length + e.value.length;
  }
  if (!Object.keys(maps).length || bytes > MAX_DELTA_BYTES) return undefined;
  return { from: prev.digest, maps };
}

/**
 * A host's build of the earlier revision with the delta's entries in its Maps: the build of the
 * new revision on this host. Maps this host does not run (a hostSelector) are not in its build.
 */
export function withEntries(build: Build, delta: EntriesDelta, revision: string): Build {
  return {
    ...build,
    desired: { ...build.desired, maps: build.desired.maps.map((m) => (delta.maps[m.name] ? { ...m, entries: delta.maps[m.name]! } : m)) },
    revision,
  };
}
