// Map manifests against what the kernel and the objects allow: definitions by map type (sizes,
// flags by name, inner maps), entry policies, and entries encoded by their types (declared, or
// from the BTF of the object map a Map is bound to), with each problem at its file, line and field.
import type { LocatedManifest } from "./parse-manifests.ts";
import type { IssueCode, ManifestIssue } from "./manifest-issues.ts";
import type { MapManifest } from "../../schemas/manifest.ts";
import type { EntriesFile, RawEntry } from "./entries-file.ts";
import { parseDeclaredType, typeName, type TypeDesc } from "./type-desc.ts";
import { EncodeError, encodeEntryField } from "./typed-values.ts";
import { encodeEntryBytes } from "./bytes.ts";
import { checkMapDefinition, entryKind, mapFlags, perCpuStride } from "./map-types.ts";
import type { MapTypes, ObjectFacts, Validated } from "./validate.ts";

type At = (m: LocatedManifest, path: Array<string | number>, code: IssueCode, message: string) => void;

/** Map types exact can hold to git's entries: their entries can be listed, and deleted (or, in arrays, reset). */
const EXACT_TYPES = new Set(["hash", "array", "lru_hash", "lpm_trie"]);

/** "value.rules[0].port" -> ["value", "rules", 0, "port"] */
function pathSegments(path: string): Array<string | number> {
  return [...path.matchAll(/([A-Za-z_]\w*)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));
}

/**
 * A Map's key and value types: declared in the manifest (keyType, valueType), else what the BTF of
 * the object it is bound to says. Declared types must have the map's sizes.
 */
function mapTypes(m: LocatedManifest & { manifest: MapManifest }, bound: MapTypes | undefined, at: (m: LocatedManifest, path: Array<string | number>, code: IssueCode, message: string) => void): MapTypes {
  const s = m.manifest.spec;
  const out: MapTypes = {};
  for (const [part, field, size] of [["key", "keyType", s.keySize], ["value", "valueType", s.valueSize]] as const) {
    const declared = s[field];
    if (declared !== undefined) {
      const t = parseDeclaredType(declared, `spec.${field}`);
      if (typeof t === "string") at(m, ["spec", field], "EntryType", t.replace(/^spec\.\w+(: )?/, "") || t);
      else if (t.size !== size) at(m, ["spec", field], "EntryType", `${typeName(t)} is ${t.size} bytes, the map's ${part}Size is ${size}`);
      else out[part] = t;
    } else if (bound?.[part]?.size === size) out[part] = bound[part];
  }
  return out;
}

/** One side of an entry as bytes (encodeEntryField), or null with the problem reported at its field. */
function encodeEntryPart(v: unknown, size: number, type: TypeDesc | undefined, part: "key" | "value", report: (field: string, message: string) => void): Buffer | null {
  try {
    return encodeEntryField(v, size, type, part);
  } catch (e) {
    if (!(e instanceof EncodeError)) throw e;
    report(e.path, e.detail);
    return null;
  }
}

/** The markers a host reference is written as among the hex entries, resolved on the host before planning (host/resolve-refs.ts). */
export const REF = { map: "@map:", ifindex: "@ifindex:" } as const;

export function validateMaps(validated: Validated, objects: Map<string, ObjectFacts>, opts: { budget: number; entryFiles?: Map<string, EntriesFile> }, at: At, issues: ManifestIssue[]): void {
  const budget = opts.budget;
  // The types an object's BTF gives the maps that Map manifests are bound to.
  const boundTypes = new Map<string, MapTypes>();
  // and the structs of the objects bound to each Map (a record type must be one of them)
  const boundStructs = new Map<string, Set<string>>();
  for (const p of validated.programs.values()) {
    const facts = objects.get(p.id);
    if (!facts?.ok) continue;
    for (const [objMap, o] of Object.entries(p.manifest.spec.maps ?? {})) {
      if (!o.bind) continue;
      const t = facts.mapTypes?.[objMap];
      if (t && !boundTypes.has(o.bind)) boundTypes.set(o.bind, t);
      boundStructs.set(o.bind, new Set([...(boundStructs.get(o.bind) ?? []), ...(facts.structs ?? [])]));
    }
  }

  for (const m of validated.maps.values()) {
    const s = m.manifest.spec;
    const name = m.manifest.metadata.name;
    const types = mapTypes(m, boundTypes.get(name), at);
    validated.types.set(name, types);
    const flags = mapFlags(s.flags);
    if (typeof flags === "string") at(m, ["spec", "flags"], "MapDefinition", flags);
    else {
      for (const p of checkMapDefinition({ type: s.type, keySize: s.keySize, valueSize: s.valueSize, maxEntries: s.maxEntries, flags })) at(m, ["spec", p.field], "MapDefinition", p.message);
      validated.flags.set(name, flags);
    }
    const kind = entryKind(s.type);
    if (kind === "maps") {
      if (!s.innerMap) at(m, ["spec", "innerMap"], "MapDefinition", `a ${s.type} map needs innerMap: the definition of the maps it holds`);
      else {
        const innerFlags = mapFlags(s.innerMap.flags);
        if (typeof innerFlags === "string") at(m, ["spec", "innerMap", "flags"], "MapDefinition", innerFlags);
        else for (const p of checkMapDefinition({ ...s.innerMap, flags: innerFlags })) at(m, ["spec", "innerMap", p.field], "MapDefinition", p.message);
      }
    } else if (s.innerMap) at(m, ["spec", "innerMap"], "MapDefinition", `only hash_of_maps and array_of_maps hold maps; a ${s.type} map takes no innerMap`);
    if (s.recordType && !["ringbuf", "perf_event_array", "queue", "stack"].includes(s.type)) at(m, ["spec", "recordType"], "MapDefinition", `recordType is for maps of records (ringbuf, perf_event_array, queue, stack), not ${s.type}`);
    else if (s.recordType && !boundStructs.get(name)?.has(s.recordType)) {
      at(m, ["spec", "recordType"], "EntryType", boundStructs.has(name) ? `no struct ${s.recordType} in the BTF of the objects bound to Map/${name}` : `recordType names a struct in the BTF of a program's object: bind this map in a Program (maps: { OBJECT_MAP: { bind: ${name} } })`);
    }
    const bytes = s.maxEntries * (s.keySize + s.valueSize);
    if (bytes > budget) at(m, ["spec", "maxEntries"], "MapTooLarge", `maxEntries ${s.maxEntries} x (keySize ${s.keySize} + valueSize ${s.valueSize}) is ${bytes} bytes, over the budget of ${budget} (--map-memory-budget)`);
    if (s.merge === "sum" && s.valueSize % 8 !== 0) at(m, ["spec", "merge"], "EntrySize", `merge: sum adds u64 counters, but valueSize ${s.valueSize} is not a multiple of 8`);
    const entries = s.entries ?? [];
    const file = s.entriesFile ? opts.entryFiles?.get(m.id) : undefined;
    const list: RawEntry[] = file ? file.entries : entries;
    if (s.entryPolicy === "exact") {
      if (!s.datapathWrites) at(m, ["spec", "entryPolicy"], "EntryPolicy", "exact deletes entries git does not list: say what the datapath writes to this map (datapathWrites: none | values | entries)");
      else if (s.datapathWrites === "entries") at(m, ["spec", "datapathWrites"], "EntryPolicy", "the datapath inserts entries of its own: exact would delete them on every reconcile; use entryPolicy: seed");
      if (s.overwriteEntries) at(m, ["spec", "overwriteEntries"], "EntryPolicy", "overwriteEntries is for seed; exact rewrites values unless datapathWrites: values");
      if (!EXACT_TYPES.has(s.type)) at(m, ["spec", "entryPolicy"], "EntryPolicy", `exact needs a map whose entries can be listed and deleted or reset; a ${s.type} map's cannot`);
    }
    if (s.entries && s.entriesFile) at(m, ["spec", "entriesFile"], "EntriesFile", "entries and entriesFile both: say the entries in one place");
    if (list.length && (kind === "none" || s.type === "prog_array")) {
      at(m, file ? ["spec", "entriesFile"] : ["spec", "entries", 0], "EntrySize", s.type === "prog_array" ? "prog_array slots are filled by Chains, not by entries" : `a ${s.type} map's entries are made by the datapath or a process (sockets, records, perf buffers): it takes no entries`);
      continue;
    }
    // Where an entry's problem is reported: its line in the entries file, or its place in the manifest.
    const report = file
      ? (i: number, field: string | null, code: IssueCode, message: string) => issues.push({ code, file: file.file, line: file.lines[i] ?? 1, column: 1, manifest: m.id, field: `entries[${i}]${field ? `.${field}` : ""}`, message })
      : (i: number, field: string | null, code: IssueCode, message: string) => at(m, ["spec", "entries", i, ...(field ? pathSegments(field) : [])], code, message);
    if (list.length > s.maxEntries) at(m, file ? ["spec", "entriesFile"] : ["spec", "entries"], "TooManyEntries", `${list.length} entries do not fit maxEntries ${s.maxEntries}`);
    let bad = 0;
    const encoded: Array<{ key: string; value: string }> = [];
    list.forEach((e, i) => {
      if (bad >= 20) return; // enough to act on; the rest would only bury them
      const before = issues.length;
      const problem = (field: string, msg: string) => report(i, field, "EntrySize", msg);
      let key: Buffer | null = Buffer.alloc(0);
      if (kind === "pushed") {
        if (e.key !== undefined) problem("key", `a ${s.type} map's entries are values only (pushed in order when the map is made): no key`);
      } else if (e.key === undefined) problem("key", "an entry needs a key");
      else {
        key = encodeEntryPart(e.key, s.keySize, types.key, "key", problem);
        if (key && s.type === "array" && key.readUInt32LE(0) >= s.maxEntries) problem("key", `array index ${key.readUInt32LE(0)} is past the last one (maxEntries ${s.maxEntries})`);
      }
      let value: Buffer | string | null;
      if (kind === "maps") value = mapRef(e.value, validated, s.innerMap, problem);
      else if (kind === "interfaces") value = interfaceRef(e.value, s.valueSize, problem);
      else if (kind === "keyed-cpu") value = cpuQueue(e.value, s.valueSize, problem);
      else if (PER_CPU.has(s.type) && isPerCpuList(e.value)) value = perCpuValues(e.value.perCpu, s.valueSize, types.value, problem);
      else value = encodeEntryPart(e.value, s.valueSize, types.value, "value", problem);
      if (issues.length > before || key === null || value === null) bad++;
      else encoded.push({ key: key.toString("hex"), value: typeof value === "string" ? value : value.toString("hex") });
    });
    validated.entries.set(name, encoded);
  }
}

const PER_CPU = new Set(["percpu_hash", "percpu_array", "lru_percpu_hash"]);
const isPerCpuList = (v: unknown): v is { perCpu: unknown[] } => !!v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && Array.isArray((v as { perCpu?: unknown }).perCpu);

/**
 * A per-CPU value written per CPU ({ perCpu: [cpu0, cpu1, ...] }): each at the kernel's stride
 * (the value size rounded up to 8), CPUs not listed zero. Trailing zeros are left out, as the
 * kernel's values read back are.
 */
function perCpuValues(list: unknown[], valueSize: number, type: TypeDesc | undefined, problem: (field: string, msg: string) => void): Buffer | null {
  if (!list.length || list.length > 4096) return problem("value.perCpu", "one value per CPU, 1 to 4096 of them"), null;
  const stride = perCpuStride(valueSize);
  const out = Buffer.alloc(stride * list.length);
  for (const [i, v] of list.entries()) {
    const b = encodeEntryPart(v, valueSize, type, `value.perCpu[${i}]` as "value", problem);
    if (!b) return null;
    b.copy(out, i * stride);
  }
  let end = list.length;
  while (end > 1 && out.subarray((end - 1) * stride, end * stride).every((x) => x === 0)) end--;
  return out.subarray(0, end * stride);
}

/** A map-in-map entry's value: { map: NAME }, a Map manifest of the inner definition. */
function mapRef(v: unknown, validated: Validated, inner: { type: string; keySize: number; valueSize: number; maxEntries: number } | undefined, problem: (field: string, msg: string) => void): string | null {
  const name = v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 ? (v as { map?: unknown }).map : undefined;
  if (typeof name !== "string") return problem("value", "a map-in-map entry's value names a Map manifest: { map: NAME }"), null;
  const target = validated.maps.get(name);
  if (!target) return problem("value.map", `no Map "${name}" in the manifests`), null;
  const t = target.manifest.spec;
  if (inner && (t.type !== inner.type || t.keySize !== inner.keySize || t.valueSize !== inner.valueSize || t.maxEntries !== inner.maxEntries)) {
    return problem("value.map", `Map/${name} is ${t.type} ${t.keySize}/${t.valueSize} x${t.maxEntries}; this map holds ${inner.type} ${inner.keySize}/${inner.valueSize} x${inner.maxEntries}`), null;
  }
  return `${REF.map}${name}`;
}

/** A devmap entry's value: { interface: NAME, netns?: NS } (resolved to its ifindex on the host) or an ifindex. */
function interfaceRef(v: unknown, valueSize: number, problem: (field: string, msg: string) => void): string | null {
  if (typeof v === "number" && Number.isSafeInteger(v) && v > 0 && v < 2 ** 32) return Buffer.concat([encodeEntryBytes(v, 4) as Buffer, Buffer.alloc(valueSize - 4)]).toString("hex");
  const o = v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  const extra = o ? Object.keys(o).filter((k) => k !== "interface" && k !== "netns") : [];
  if (!o || typeof o.interface !== "string" || extra.length || (o.netns !== undefined && typeof o.netns !== "string")) return problem("value", "a devmap entry's value is { interface: NAME, netns: NS } (netns optional) or an ifindex"), null;
  if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(o.interface)) return problem("value.interface", `"${o.interface}" is not an interface name`), null;
  if (o.netns !== undefined && !/^[A-Za-z0-9_.-]{1,255}$/.test(o.netns as string)) return problem("value.netns", `"${o.netns}" is not a network namespace name`), null;
  return `${REF.ifindex}${(o.netns as string | undefined) ?? ""}/${o.interface}/${valueSize}`;
}

/** A cpumap entry's value: the queue size for that CPU (a number, or { qsize }). */
function cpuQueue(v: unknown, valueSize: number, problem: (field: string, msg: string) => void): Buffer | null {
  const q = typeof v === "number" ? v : v && typeof v === "object" ? (v as { qsize?: unknown }).qsize : undefined;
  if (typeof q !== "number" || !Number.isSafeInteger(q) || q < 1 || q >= 2 ** 32) return problem("value", "a cpumap entry's value is the CPU's queue size: a number, or { qsize: N }"), null;
  return Buffer.concat([encodeEntryBytes(q, 4) as Buffer, Buffer.alloc(valueSize - 4)]);
}
