// Cross-document checks over parsed manifests and the facts read from their object files:
// duplicates, dangling references, hook/program type mismatches, chain cycles, object contents.
// Pure: returns every issue found.
import type { LocatedManifest } from "./parse-manifests.ts";
import { fieldPath, type ManifestIssue, type IssueCode } from "./manifest-issues.ts";
import type { ObjectSummary } from "./object-summary.ts";
import type { AttachmentManifest, ChainManifest, Hook, MapManifest, ProgramManifest } from "../../schemas/manifest.ts";
import { AttachType, attachTypeName, MapType, mapTypeName, progTypeName } from "../../schemas/kernel-names.ts";
import type { EntriesFile, RawEntry } from "./entries-file.ts";
import { parseDeclaredType, typeName, type TypeDesc } from "./type-desc.ts";
import { EncodeError, encodeTyped } from "./typed-values.ts";

/** Map types exact can hold to git's entries: their entries can be listed, and deleted (or, in arrays, reset). */
const EXACT_TYPES = new Set(["hash", "array", "lru_hash", "lpm_trie"]);

/** The most memory one Map may ask for (maxEntries x (key + value)), unless the build says otherwise. */
export const DEFAULT_MAP_MEMORY_BUDGET = 1 << 30;

/** The object behind a Program manifest: its digest and summary, or why it could not be read. */
export type ObjectFacts =
  | { ok: true; path: string; digest: string; summary: ObjectSummary; /** key and value types of its maps, from its BTF */ mapTypes?: Record<string, MapTypes> }
  | { ok: false; path: string; code: IssueCode; message: string };

export interface MapTypes {
  key?: TypeDesc;
  value?: TypeDesc;
}

export interface Validated {
  programs: Map<string, LocatedManifest & { manifest: ProgramManifest }>;
  maps: Map<string, LocatedManifest & { manifest: MapManifest }>;
  attachments: Map<string, LocatedManifest & { manifest: AttachmentManifest }>;
  chains: Map<string, LocatedManifest & { manifest: ChainManifest }>;
  /** each Map's entries (from the manifest or its entries file), encoded as hex */
  entries: Map<string, Array<{ key: string; value: string }>>;
  /** each Map's key and value types: declared in the manifest, or from the object whose map it is bound to */
  types: Map<string, MapTypes>;
}

/** Program types a hook accepts. */
export function programTypesForHook(hook: Hook): string[] {
  switch (hook.type) {
    case "xdp":
      return ["xdp"];
    case "tcx":
      return ["sched_cls"];
    case "tracepoint":
      return ["tracepoint"];
    case "raw_tracepoint":
      return ["raw_tracepoint"];
    case "fentry":
    case "fexit":
      return ["tracing"];
    case "kprobe":
    case "kretprobe":
      return ["kprobe"];
    case "lsm":
      return ["lsm"];
    case "cgroup":
      if (hook.attachType === "cgroup_inet_ingress" || hook.attachType === "cgroup_inet_egress") return ["cgroup_skb"];
      if (hook.attachType === "cgroup_inet_sock_create") return ["cgroup_sock"];
      if (hook.attachType === "cgroup_sock_ops") return ["sock_ops"];
      return ["cgroup_sock_addr"];
  }
}

/** The program type a Program manifest will load as: its override, or what the object says. */
export function effectiveProgramType(p: ProgramManifest, facts: ObjectFacts | undefined): string | undefined {
  if (p.spec.type) return p.spec.type;
  if (!facts?.ok) return undefined;
  const prog = facts.summary.programs.find((x) => x.name === p.spec.program);
  return prog && prog.type !== 0 ? progTypeName(prog.type) : undefined;
}

/** The attach type a program is loaded for, when its manifest or its section says one (0 is "not said"). */
export function expectedAttachType(p: ProgramManifest, facts: ObjectFacts | undefined): string | undefined {
  if (p.spec.attachType) return p.spec.attachType;
  if (!facts?.ok) return undefined;
  const prog = facts.summary.programs.find((x) => x.name === p.spec.program);
  if (!prog || prog.expectedAttachType === AttachType.cgroup_inet_ingress) return undefined;
  return attachTypeName(prog.expectedAttachType);
}

const HEX_BYTES = /^hex:(\s*[0-9a-fA-F]{2})+\s*$/;

/** An entry's key or value as bytes of the given size, or why not (entries files are not schema-checked). */
export function encodeEntryBytes(v: unknown, size: number): Buffer | string {
  if (typeof v === "string") {
    if (!HEX_BYTES.test(v)) return `"${v.length > 40 ? v.slice(0, 40) + "..." : v}" is not hex:<bytes> or an unsigned integer`;
    return encodeValue(v, size) ?? `${v} does not fit`;
  }
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return encodeInteger(v, size) ?? `${v} does not fit`;
  return `${JSON.stringify(v)} is not hex:<bytes> or an unsigned integer`;
}

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

/** One side of an entry as bytes: typed when the type is known (hex: and integers stay raw), else raw. */
function encodeEntryPart(v: unknown, size: number, type: TypeDesc | undefined, part: "key" | "value", report: (field: string, message: string) => void): Buffer | null {
  const raw = typeof v === "string" && v.startsWith("hex:");
  if (type && !raw && !(typeof v === "number" && type.kind !== "int" && type.kind !== "enum" && type.kind !== "float")) {
    try {
      return encodeTyped(v, type, part);
    } catch (e) {
      if (!(e instanceof EncodeError)) throw e;
      report(e.path, e.detail);
      return null;
    }
  }
  const b = encodeEntryBytes(v, size);
  if (typeof b === "string") {
    report(part, `${part} ${b} (${part}Size ${size}${type ? "" : "; no type is known for this map: declare keyType/valueType, or bind it to an object map with BTF"})`);
    return null;
  }
  return b;
}

/** Encodes a key, value or global as bytes of the given size; null when it does not fit. */
export function encodeValue(v: string | number | boolean, size: number): Buffer | null {
  if (typeof v === "string") {
    const b = Buffer.from(v.slice(4).replace(/\s+/g, ""), "hex");
    return b.length === size ? b : null;
  }
  return encodeInteger(v, size);
}

/** An integer (or boolean) little-endian in size bytes, signed or unsigned; null when it does not fit. */
export function encodeInteger(v: number | bigint | boolean, size: number): Buffer | null {
  // The common case (an unsigned number up to 48 bits) without BigInt: large entry sets are mostly this.
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && size >= 1 && size <= 6) {
    if (v >= 2 ** (8 * size)) return null;
    const b = Buffer.alloc(size);
    b.writeUIntLE(v, 0, size);
    return b;
  }
  const n = typeof v === "boolean" ? (v ? 1n : 0n) : BigInt(v);
  if (size > 8 || size < 1) return null;
  const bits = BigInt(size * 8);
  if (n >= 1n << bits || n < -(1n << (bits - 1n))) return null;
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, n));
  return b.subarray(0, size);
}

export function validateManifests(manifests: LocatedManifest[], objects: Map<string, ObjectFacts>, opts: { mapMemoryBudget?: number; entryFiles?: Map<string, EntriesFile> } = {}): { validated: Validated; issues: ManifestIssue[] } {
  const budget = opts.mapMemoryBudget ?? DEFAULT_MAP_MEMORY_BUDGET;
  const issues: ManifestIssue[] = [];
  const at = (m: LocatedManifest, path: Array<string | number>, code: IssueCode, message: string) =>
    issues.push({ code, file: m.file, ...m.locate(path), manifest: m.id, field: fieldPath(path), message });

  const validated: Validated = { programs: new Map(), maps: new Map(), attachments: new Map(), chains: new Map(), entries: new Map(), types: new Map() };
  const seen = new Map<string, LocatedManifest>();
  for (const m of manifests) {
    const prior = seen.get(m.id);
    if (prior) {
      at(m, ["metadata", "name"], "DuplicateName", `${m.id} is also defined at ${prior.file}:${prior.locate(["metadata", "name"]).line}`);
      continue;
    }
    seen.set(m.id, m);
    const k = m.manifest.kind;
    if (k === "Program") validated.programs.set(m.manifest.metadata.name, m as never);
    else if (k === "Map") validated.maps.set(m.manifest.metadata.name, m as never);
    else if (k === "Attachment") validated.attachments.set(m.manifest.metadata.name, m as never);
    else if (k === "Chain") validated.chains.set(m.manifest.metadata.name, m as never);
  }

  // The types an object's BTF gives the maps that Map manifests are bound to.
  const boundTypes = new Map<string, MapTypes>();
  for (const p of validated.programs.values()) {
    const facts = objects.get(p.id);
    if (!facts?.ok) continue;
    for (const [objMap, o] of Object.entries(p.manifest.spec.maps ?? {})) {
      const t = o.bind ? facts.mapTypes?.[objMap] : undefined;
      if (t && o.bind && !boundTypes.has(o.bind)) boundTypes.set(o.bind, t);
    }
  }

  // Maps: a size the host can afford, and initial entries that fit the declared sizes and the map.
  for (const m of validated.maps.values()) {
    const s = m.manifest.spec;
    const types = mapTypes(m, boundTypes.get(m.manifest.metadata.name), at);
    validated.types.set(m.manifest.metadata.name, types);
    const bytes = s.maxEntries * (s.keySize + s.valueSize);
    if (bytes > budget) at(m, ["spec", "maxEntries"], "MapTooLarge", `maxEntries ${s.maxEntries} x (keySize ${s.keySize} + valueSize ${s.valueSize}) is ${bytes} bytes, over the budget of ${budget} (--map-memory-budget)`);
    if (s.merge === "sum" && s.valueSize % 8 !== 0) at(m, ["spec", "merge"], "EntrySize", `merge: sum adds u64 counters, but valueSize ${s.valueSize} is not a multiple of 8`);
    const entries = s.entries ?? [];
    const file = s.entriesFile ? opts.entryFiles?.get(m.id) : undefined;
    const list: RawEntry[] = file ? file.entries : entries;
    if (list.length && (s.type.startsWith("percpu") || s.type === "lru_percpu_hash")) {
      at(m, file ? ["spec", "entriesFile"] : ["spec", "entries", 0], "EntrySize", `a ${s.type} map holds a value per CPU: initial entries are not supported for it`);
      continue;
    }
    if (s.entryPolicy === "exact") {
      if (!s.datapathWrites) at(m, ["spec", "entryPolicy"], "EntryPolicy", "exact deletes entries git does not list: say what the datapath writes to this map (datapathWrites: none | values | entries)");
      else if (s.datapathWrites === "entries") at(m, ["spec", "datapathWrites"], "EntryPolicy", "the datapath inserts entries of its own: exact would delete them on every reconcile; use entryPolicy: seed");
      if (s.overwriteEntries) at(m, ["spec", "overwriteEntries"], "EntryPolicy", "overwriteEntries is for seed; exact rewrites values unless datapathWrites: values");
      if (!EXACT_TYPES.has(s.type)) at(m, ["spec", "entryPolicy"], "EntryPolicy", `exact needs a map whose entries can be listed and deleted or reset; a ${s.type} map's cannot`);
    }
    if (s.entries && s.entriesFile) at(m, ["spec", "entriesFile"], "EntriesFile", "entries and entriesFile both: say the entries in one place");
    // Where an entry's problem is reported: its line in the entries file, or its place in the manifest.
    const report = file
      ? (i: number, field: string | null, code: IssueCode, message: string) => issues.push({ code, file: file.file, line: file.lines[i] ?? 1, column: 1, manifest: m.id, field: `entries[${i}]${field ? `.${field}` : ""}`, message })
      : (i: number, field: string | null, code: IssueCode, message: string) => at(m, ["spec", "entries", i, ...(field ? pathSegments(field) : [])], code, message);
    if (list.length > s.maxEntries) at(m, file ? ["spec", "entriesFile"] : ["spec", "entries"], "TooManyEntries", `${list.length} entries do not fit maxEntries ${s.maxEntries}`);
    const isArray = s.type === "array" || s.type === "prog_array";
    let bad = 0;
    const encoded: Array<{ key: string; value: string }> = [];
    list.forEach((e, i) => {
      if (bad >= 20) return; // enough to act on; the rest would only bury them
      const before = issues.length;
      const key = encodeEntryPart(e.key, s.keySize, types.key, "key", (field, msg) => report(i, field, "EntrySize", msg));
      if (key && isArray && s.keySize === 4 && key.readUInt32LE(0) >= s.maxEntries) report(i, "key", "EntrySize", `array index ${key.readUInt32LE(0)} is past the last one (maxEntries ${s.maxEntries})`);
      const value = encodeEntryPart(e.value, s.valueSize, types.value, "value", (field, msg) => report(i, field, "EntrySize", msg));
      if (s.type === "prog_array") report(i, null, "EntrySize", "prog_array slots are filled by Chains, not by entries");
      if (issues.length > before) bad++;
      else encoded.push({ key: key!.toString("hex"), value: value!.toString("hex") });
    });
    validated.entries.set(m.manifest.metadata.name, encoded);
  }

  // Programs: the object, the program in it, its globals and map overrides.
  for (const p of validated.programs.values()) {
    const s = p.manifest.spec;
    const facts = objects.get(p.id);
    if (!facts) continue;
    if (!facts.ok) {
      at(p, ["spec", "object"], facts.code, facts.message);
      continue;
    }
    const sum = facts.summary;
    if (!sum.programs.some((x) => x.name === s.program)) {
      at(p, ["spec", "program"], "ProgramNotInObject", `no program "${s.program}" in ${facts.path} (it has: ${sum.programs.map((x) => x.name).join(", ") || "none"})`);
    } else if (!effectiveProgramType(p.manifest, facts)) {
      at(p, ["spec", "type"], "WrongProgramType", `libbpf does not know section "${sum.programs.find((x) => x.name === s.program)!.section}": set spec.type`);
    }
    for (const [name, value] of Object.entries(s.globals ?? {})) {
      const g = sum.rodata.find((x) => x.name === name);
      if (!g) at(p, ["spec", "globals", name], "GlobalNotInObject", `no const volatile "${name}" in .rodata of ${facts.path}`);
      else if (!encodeValue(value, g.size)) at(p, ["spec", "globals", name], "GlobalSize", `${JSON.stringify(value)} does not fit "${name}" (${g.size} bytes)`);
    }
    for (const [name, o] of Object.entries(s.maps ?? {})) {
      const om = sum.maps.find((x) => x.name === name && !x.internal);
      if (!om) {
        at(p, ["spec", "maps", name], "MapNotInObject", `no map "${name}" in ${facts.path} (it has: ${sum.maps.filter((x) => !x.internal).map((x) => x.name).join(", ") || "none"})`);
        continue;
      }
      if (!o.bind) continue;
      const bound = validated.maps.get(o.bind);
      if (!bound) {
        at(p, ["spec", "maps", name, "bind"], "UnknownReference", `no Map "${o.bind}" in the manifests`);
        continue;
      }
      const b = bound.manifest.spec;
      const diffs: string[] = [];
      if (MapType[b.type] !== om.type) diffs.push(`type ${b.type} vs ${mapTypeName(om.type)}`);
      if (b.keySize !== om.keySize) diffs.push(`keySize ${b.keySize} vs ${om.keySize}`);
      if (b.valueSize !== om.valueSize) diffs.push(`valueSize ${b.valueSize} vs ${om.valueSize}`);
      if (diffs.length) at(p, ["spec", "maps", name, "bind"], "MapBindingMismatch", `Map/${o.bind} does not match the object's map "${name}": ${diffs.join(", ")}`);
    }
  }

  const programType = (name: string) => {
    const p = validated.programs.get(name);
    return p ? effectiveProgramType(p.manifest, objects.get(p.id)) : undefined;
  };

  for (const a of validated.attachments.values()) {
    const s = a.manifest.spec;
    if (!validated.programs.has(s.program)) {
      at(a, ["spec", "program"], "UnknownReference", `no Program "${s.program}" in the manifests`);
      continue;
    }
    const t = programType(s.program);
    const want = programTypesForHook(s.hook);
    if (t && !want.includes(t)) at(a, ["spec", "hook", "type"], "WrongProgramType", `Program/${s.program} is a ${t} program; a ${s.hook.type} hook takes ${want.join(" or ")}`);
    else if (s.hook.type === "cgroup") {
      // The kernel refuses (EINVAL) a cgroup attach type other than the one the program was loaded for.
      const expected = expectedAttachType(validated.programs.get(s.program)!.manifest, objects.get(validated.programs.get(s.program)!.id));
      if (expected && expected !== s.hook.attachType) at(a, ["spec", "hook", "attachType"], "WrongAttachType", `Program/${s.program} is loaded for ${expected} (its section or spec.attachType), not ${s.hook.attachType}`);
    }
  }

  for (const c of validated.chains.values()) {
    const s = c.manifest.spec;
    const want = programTypesForHook(s.hook);
    if (!validated.programs.has(s.root)) at(c, ["spec", "root"], "UnknownReference", `no Program "${s.root}" in the manifests`);
    else {
      const t = programType(s.root);
      if (t && !want.includes(t)) at(c, ["spec", "root"], "WrongProgramType", `Program/${s.root} is a ${t} program; a ${s.hook.type} hook takes ${want.join(" or ")}`);
    }
    const pa = validated.maps.get(s.progArray);
    if (!pa) at(c, ["spec", "progArray"], "UnknownReference", `no Map "${s.progArray}" in the manifests`);
    else if (pa.manifest.spec.type !== "prog_array") at(c, ["spec", "progArray"], "ChainStageType", `Map/${s.progArray} is a ${pa.manifest.spec.type}, not a prog_array`);
    else if (pa.manifest.spec.maxEntries < s.stages.length) at(c, ["spec", "stages"], "ChainStageType", `${s.stages.length} stages do not fit Map/${s.progArray} (maxEntries ${pa.manifest.spec.maxEntries})`);
    const seenStages = new Map<string, number>();
    s.stages.forEach((st, i) => {
      if (st === s.root || seenStages.has(st)) {
        at(c, ["spec", "stages", i], "ChainCycle", `Program/${st} already runs in this chain (${st === s.root ? "as its root" : `at slot ${seenStages.get(st)}`}): the tail calls would loop`);
        return;
      }
      seenStages.set(st, i);
      if (!validated.programs.has(st)) return at(c, ["spec", "stages", i], "UnknownReference", `no Program "${st}" in the manifests`);
      const t = programType(st);
      if (t && !want.includes(t)) at(c, ["spec", "stages", i], "ChainStageType", `Program/${st} is a ${t} program; stages of a ${s.hook.type} chain must be ${want.join(" or ")}`);
    });
  }
  return { validated, issues };
}
