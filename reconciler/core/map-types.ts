// What each map type a Map manifest may declare requires, as the kernel checks it at creation:
// key and value sizes, maxEntries, the flags it takes (by name), and what its entries are. Checked
// before anything changes, so a bad definition is a manifest error with its field, not an EINVAL
// from BPF_MAP_CREATE. Pure data and checks.

/** Map flags by name (include/uapi/linux/bpf.h). */
export const MAP_FLAGS = {
  no_prealloc: 1 << 0,
  no_common_lru: 1 << 1,
  numa_node: 1 << 2,
  rdonly: 1 << 3,
  wronly: 1 << 4,
  stack_build_id: 1 << 5,
  zero_seed: 1 << 6,
  rdonly_prog: 1 << 7,
  wronly_prog: 1 << 8,
  clone: 1 << 9,
  mmapable: 1 << 10,
  preserve_elems: 1 << 11,
  inner_map: 1 << 12,
} as const;
export type MapFlagName = keyof typeof MAP_FLAGS;

/** What a map's entries are in a manifest. */
export type EntryKind =
  /** key -> value */
  | "keyed"
  /** values only, pushed when the map is created (queue, stack, bloom filter) */
  | "pushed"
  /** key -> another Map manifest (map-in-map) */
  | "maps"
  /** key -> an interface (devmap), resolved to its ifindex on the host */
  | "interfaces"
  /** key -> a CPU queue size (cpumap) */
  | "keyed-cpu"
  /** no entries: the datapath or a process fills it (sockets, perf buffers, records) */
  | "none";

interface Rule {
  keySize?: number;
  valueSizes?: number[];
  flags: MapFlagName[];
  requiredFlags?: MapFlagName[];
  entries: EntryKind;
  /** maxEntries: a power of two number of pages (ring buffers) */
  pages?: boolean;
}

const ACCESS: MapFlagName[] = ["rdonly", "wronly", "rdonly_prog", "wronly_prog", "numa_node"];

export const MAP_TYPE_RULES = {
  hash: { flags: ["no_prealloc", "zero_seed", ...ACCESS], entries: "keyed" },
  percpu_hash: { flags: ["no_prealloc", "zero_seed", ...ACCESS], entries: "keyed" },
  lru_hash: { flags: ["no_common_lru", "zero_seed", ...ACCESS], entries: "keyed" },
  lru_percpu_hash: { flags: ["no_common_lru", "zero_seed", ...ACCESS], entries: "keyed" },
  array: { keySize: 4, flags: ["mmapable", "inner_map", ...ACCESS], entries: "keyed" },
  percpu_array: { keySize: 4, flags: [...ACCESS], entries: "keyed" },
  lpm_trie: { flags: ["no_prealloc", ...ACCESS], requiredFlags: ["no_prealloc"], entries: "keyed" },
  prog_array: { keySize: 4, valueSizes: [4], flags: [...ACCESS], entries: "none" },
  perf_event_array: { keySize: 4, valueSizes: [4], flags: ["preserve_elems", ...ACCESS], entries: "none" },
  ringbuf: { keySize: 0, valueSizes: [0], flags: ["numa_node"], entries: "none", pages: true },
  queue: { keySize: 0, flags: [...ACCESS], entries: "pushed" },
  stack: { keySize: 0, flags: [...ACCESS], entries: "pushed" },
  bloom_filter: { keySize: 0, flags: [...ACCESS], entries: "pushed" },
  hash_of_maps: { valueSizes: [4], flags: ["no_prealloc", ...ACCESS], entries: "maps" },
  array_of_maps: { keySize: 4, valueSizes: [4], flags: [...ACCESS], entries: "maps" },
  devmap: { keySize: 4, valueSizes: [4, 8], flags: ["rdonly", "wronly", "numa_node"], entries: "interfaces" },
  devmap_hash: { keySize: 4, valueSizes: [4, 8], flags: ["rdonly", "wronly", "numa_node"], entries: "interfaces" },
  cpumap: { keySize: 4, valueSizes: [4, 8], flags: ["numa_node"], entries: "keyed-cpu" },
  xskmap: { keySize: 4, valueSizes: [4], flags: ["numa_node"], entries: "none" },
  sockmap: { keySize: 4, valueSizes: [4, 8], flags: ["numa_node"], entries: "none" },
  sockhash: { valueSizes: [4, 8], flags: ["numa_node"], entries: "none" },
} satisfies Record<string, Rule>;
export type MapTypeRuleName = keyof typeof MAP_TYPE_RULES;

/** flags as written (a number or names) -> the number, or why not. */
export function mapFlags(flags: number | string[] | undefined): number | string {
  if (flags === undefined) return 0;
  if (typeof flags === "number") return flags;
  let n = 0;
  for (const f of flags) {
    const bit = (MAP_FLAGS as Record<string, number>)[f];
    if (bit === undefined) return `unknown map flag "${f}" (${Object.keys(MAP_FLAGS).join(", ")})`;
    n |= bit;
  }
  return n;
}

const PAGE = 4096;

/** Problems with a map definition, each with the field it is about. */
export function checkMapDefinition(d: { type: string; keySize: number; valueSize: number; maxEntries: number; flags: number }): Array<{ field: "type" | "keySize" | "valueSize" | "maxEntries" | "flags"; message: string }> {
  const rule = (MAP_TYPE_RULES as Record<string, Rule>)[d.type];
  if (!rule) return [{ field: "type", message: `unknown map type ${d.type}` }];
  const out: ReturnType<typeof checkMapDefinition> = [];
  if (rule.keySize !== undefined && d.keySize !== rule.keySize) out.push({ field: "keySize", message: `a ${d.type} map's keySize is ${rule.keySize}` });
  if (rule.keySize === undefined && d.keySize < 1) out.push({ field: "keySize", message: `a ${d.type} map needs a keySize of at least 1` });
  if (rule.valueSizes && !rule.valueSizes.includes(d.valueSize)) out.push({ field: "valueSize", message: `a ${d.type} map's valueSize is ${rule.valueSizes.join(" or ")}` });
  if (!rule.valueSizes && d.valueSize < 1) out.push({ field: "valueSize", message: `a ${d.type} map needs a valueSize of at least 1` });
  if (rule.pages && (d.maxEntries % PAGE !== 0 || (d.maxEntries & (d.maxEntries - 1)) !== 0)) out.push({ field: "maxEntries", message: `a ring buffer's size (maxEntries, in bytes) is a power of two number of ${PAGE}-byte pages, e.g. 262144` });
  const allowed = rule.flags.reduce((n, f) => n | MAP_FLAGS[f], 0);
  const extra = d.flags & ~allowed;
  if (extra) {
    const names = Object.entries(MAP_FLAGS).filter(([, bit]) => extra & bit).map(([n]) => n);
    out.push({ field: "flags", message: `a ${d.type} map does not take ${names.length ? names.join(", ") : `flags 0x${extra.toString(16)}`} (it takes: ${rule.flags.join(", ") || "none"})` });
  }
  for (const f of rule.requiredFlags ?? []) if (!(d.flags & MAP_FLAGS[f])) out.push({ field: "flags", message: `a ${d.type} map needs the ${f} flag (flags: [${f}])` });
  return out;
}

/** Where each CPU's value starts in a per-CPU map's values: the value size rounded up to 8. */
export function perCpuStride(valueSize: number): number {
  return (valueSize + 7) & ~7;
}

/** Flags the kernel sets itself at creation (a devmap of bare ifindexes is read-only to programs). */
export function kernelAddedFlags(type: string, valueSize: number): number {
  return (type === "devmap" || type === "devmap_hash") && valueSize === 4 ? MAP_FLAGS.rdonly_prog : 0;
}

export function entryKind(type: string): EntryKind {
  return ((MAP_TYPE_RULES as Record<string, Rule>)[type]?.entries ?? "none") as EntryKind;
}
