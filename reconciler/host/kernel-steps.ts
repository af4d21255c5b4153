// The kernel work behind a plan's steps, in bpfops's terms: create a Map from its definition,
// write initial entries without overwriting the datapath's, copy entries into a replacement, load
// and pin one program version, attach a program to a concrete hook.
import { setBounded } from "../core/bounded-map.ts";
import { MapHandle, type LinkHandle, type MapEntry, type ProgramHandle } from "../kernel/handles.ts";
import { MapType, MapUpdateFlags, type MapTypeName } from "../../schemas/kernel-names.ts";
import { loadDesiredProgram } from "./load-program.ts";
import type { LibbpfMessage } from "../kernel/object.ts";
import { attachCgroupLink, attachPerfEventLink, attachNetfilterLink, attachNetnsLink, attachRawTracepointLink, attachSockmapLink, attachTcxLink, attachTracepointLink, attachTracingLink, attachUprobeLink, attachXdpLink, type CgroupAttachName } from "../kernel/attach.ts";
import type { DesiredProgram, MapDefinition } from "../core/desired.ts";
import type { MapEntryHex } from "../core/plan.ts";
import { BpfopsError, NotSupportedError } from "../core/errors.ts";
import { elfFunctionOffset } from "../core/elf.ts";
import { readFileSync, statSync } from "node:fs";
import { layout, type ConcreteHook } from "../core/layout.ts";
import { mapBtf } from "../core/btf-write.ts";
import { REF } from "../core/validate-maps.ts";
import { perCpuStride } from "../core/map-types.ts";
import { openPinnedMap } from "../kernel/pins.ts";
import type { MapTypes } from "../core/validate.ts";

/**
 * A new map of this definition, not pinned yet. With types, the map carries them as BTF (dumps
 * show fields by name) where the kernel takes them; a map type whose BTF check refuses them (an
 * LPM trie key that is not a struct, a devmap) is made without: the types are for reading the map, never a
 * reason not to have it.
 */
export function newMap(def: MapDefinition, name: string, types?: MapTypes): MapHandle {
  const d = { ...def, type: MapType[def.type as MapTypeName] };
  if (def.inner) {
    const template = MapHandle.create({ ...def.inner, type: MapType[def.inner.type as MapTypeName] }, `${name}_inner`);
    try {
      return MapHandle.create(d, name, template);
    } finally {
      template.close();
    }
  }
  if (types && (types.key || types.value)) {
    try {
      return MapHandle.createWithBtf(d, name, mapBtf(types, def.keySize, def.valueSize));
    } catch {
      // (EINVAL, ENOTSUPP for a devmap...) whatever stops it, a map without BTF is made below,
      // and a failure that is not about BTF fails there too.
    }
  }
  return MapHandle.create(d, name);
}

/** Pins a fresh handle at path; if the pin fails, the handle is closed (the object goes away). */
function pinOrClose<T extends { pin(path: string): void; close(): void }>(h: T, path: string): T {
  try {
    h.pin(path);
  } catch (e) {
    h.close();
    throw e;
  }
  return h;
}

/** Array maps always hold every key: an all-zero value there is an entry nobody has written. */
export function isUnwrittenArrayValue(mapType: string, value: Buffer | null): boolean {
  return (mapType === "array" || mapType === "percpu_array") && value !== null && value.every((b) => b === 0);
}

/**
 * Writes initial entries; entries already present stay as the datapath or an operator left them
 * unless overwrite. Returns how many were written.
 */
export function writeInitialEntries(m: MapHandle, entries: MapEntryHex[], overwrite: boolean, onEntries?: (done: number, total: number) => void, mapPin?: (name: string) => string): number {
  const mapType = m.info().typeName;
  if (entries.some((e) => e.value.startsWith(REF.map))) return writeMapRefs(m, entries, mapPin);
  // Interfaces of another network namespace are written one by one from inside it.
  let written = 0;
  for (const e of entries.filter((x) => x.netns)) {
    const key = Buffer.from(e.key, "hex");
    if (!overwrite && m.lookup(key) !== null) continue;
    m.update(key, Buffer.from(e.value, "hex"), MapUpdateFlags.any, e.netns);
    written++;
  }
  entries = entries.filter((x) => !x.netns);
  if (!entries.length) return written;
  let todo = entries.map((e) => ({ key: Buffer.from(e.key, "hex"), value: perCpuValue(m, Buffer.from(e.value, "hex")) }));
  // Array keys always exist: without overwrite, only the ones nobody has written are written.
  if (!overwrite && mapType.endsWith("array")) todo = todo.filter((e) => isUnwrittenArrayValue(mapType, m.lookup(e.key)));
  const flags = overwrite || mapType.endsWith("array") ? MapUpdateFlags.any : MapUpdateFlags.noExist;
  return written + m.updateMany(todo, flags, onEntries && ((done) => onEntries(done, todo.length)));
}

/** A per-CPU map takes a value for every CPU: one value given is every CPU's; a list is CPU by CPU, the rest zero. */
function perCpuValue(m: MapHandle, v: Buffer): Buffer {
  if (!m.perCpu || v.length === m.valueBufferSize) return v;
  const stride = perCpuStride(m.valueSize);
  const out = Buffer.alloc(m.valueBufferSize);
  if (v.length === m.valueSize) {
    for (let off = 0; off < out.length; off += stride) v.copy(out, off);
    return out;
  }
  if (v.length % stride !== 0 || v.length > out.length) throw new RangeError(`map ${m.name}: ${v.length / stride} per-CPU values for ${out.length / stride} CPUs`);
  v.copy(out);
  return out;
}

/** Map-in-map entries: each names a Map manifest, whose map (by its pin) the kernel takes as an fd. */
function writeMapRefs(m: MapHandle, entries: MapEntryHex[], mapPin?: (name: string) => string): number {
  if (!mapPin) throw new Error("writeInitialEntries: map-in-map entries need the bpffs root");
  for (const e of entries) {
    const inner = openPinnedMap(mapPin(e.value.slice(REF.map.length)));
    try {
      const fd = Buffer.alloc(4);
      fd.writeUInt32LE(inner.fd);
      m.update(Buffer.from(e.key, "hex"), fd);
    } finally {
      inner.close();
    }
  }
  return entries.length;
}

/**
 * Removes entries (exact: keys git no longer lists): deleted from hashes and tries, reset to
 * zero in arrays, whose keys always exist. Returns how many went.
 */
export function removeEntries(m: MapHandle, keys: string[]): number {
  const mapType = m.info().typeName;
  const buffers = keys.map((k) => Buffer.from(k, "hex"));
  if (mapType.endsWith("array")) return m.updateMany(buffers.map((key) => ({ key, value: Buffer.alloc(m.valueBufferSize) })));
  return m.deleteMany(buffers);
}

export function copyEntries(from: MapHandle, to: MapHandle): { copied: number; dropped: number; snapshot: Map<string, Buffer> } {
  let copied = 0;
  let dropped = 0;
  const entries = from.entries();
  const snapshot = new Map(entries.map((e) => [e.key.toString("hex"), Buffer.from(e.value)]));
  if (from.keySize !== to.keySize || from.valueSize !== to.valueSize) return { copied, dropped: entries.length, snapshot };
  for (const e of entries) {
    try {
      to.update(e.key, e.value);
      copied++;
    } catch {
      dropped++;
    }
  }
  return { copied, dropped, snapshot };
}

/**
 * After the hooks have moved to the new map, what the datapath wrote to the old one since the
 * copy goes over too: keys whose value changed take the old map's latest value, or with sum
 * (u64 lanes, per-CPU values included) get what was counted meanwhile added to theirs.
 */
export function carryOver(from: MapHandle, to: MapHandle, snapshot: Map<string, Buffer>, merge: "latest" | "sum"): number {
  if (from.keySize !== to.keySize || from.valueSize !== to.valueSize) return 0;
  let carried = 0;
  const sums: MapEntry[] = [];
  for (const e of from.entries()) {
    const before = snapshot.get(e.key.toString("hex"));
    if (before?.equals(e.value)) continue;
    if (merge === "sum" && before) {
      // The datapath writes the new map meanwhile: the delta is added in the kernel, never by a read-modify-write here.
      const delta = Buffer.alloc(e.value.length);
      for (let off = 0; off + 8 <= delta.length; off += 8) delta.writeBigUInt64LE(BigInt.asUintN(64, e.value.readBigUInt64LE(off) - before.readBigUInt64LE(off)), off);
      sums.push({ key: e.key, value: delta });
      continue;
    }
    try {
      // A key new since the copy (or merge latest): its value as the old map has it.
      to.update(e.key, e.value, merge === "sum" ? MapUpdateFlags.noExist : MapUpdateFlags.any);
      carried++;
    } catch (err) {
      const code = (err as { code?: string }).code;
      // The datapath made the key in the new map too: add instead. No room: reported as not fitting at the copy.
      if (merge === "sum" && code === "EEXIST") sums.push({ key: e.key, value: e.value });
    }
  }
  to.addToValues(sums);
  return carried + sums.length;
}

/**
 * Loads a program version bound to the Map pins given, and pins it at pin; its own maps pin under
 * objmaps/. Returns what libbpf printed on the way, for the log.
 */
export async function loadProgramVersion(root: string, d: DesiredProgram, bytes: Buffer, mapPins: Record<string, string>, pin: string, objectMapPins: Record<string, string> = {}): Promise<LibbpfMessage[]> {
  const loaded = await loadDesiredProgram(d, bytes, { root, mode: "apply", mapPin: (name) => mapPins[name]!, objectMapPin: (map) => objectMapPins[map], versionMapPin: (map) => layout.programPart(pin, "map", map) });
  for (const m of loaded.maps.values()) m.close();
  // A collection's other programs first: the primary's pin is what marks the version as there.
  for (const [name, p] of loaded.members) pinOrClose(p, layout.programPart(pin, "program", name)).close();
  pinOrClose(loaded.program, pin).close();
  return loaded.libbpf;
}

/**
 * Attaches a program to one concrete hook as a link (not pinned): on tcx, next to another link
 * when given; a sockmap hook's Map is the one pinned under root.
 */
export function attachToHook(program: ProgramHandle, h: ConcreteHook, opts: { root: string; next?: { position: "before" | "after"; link: LinkHandle } }): LinkHandle {
  const next = opts.next;
  switch (h.type) {
    case "xdp":
      return attachXdpLink(program, { ifname: h.ifname, netns: h.netns, mode: h.mode });
    case "tcx":
      return attachTcxLink(program, { ifname: h.ifname, netns: h.netns, direction: h.direction, ...(next ? { [next.position]: next.link } : {}) });
    case "cgroup":
      return attachCgroupLink(program, h.path, h.attachType as CgroupAttachName);
    case "tracepoint":
      return attachTracepointLink(program, h.name);
    case "raw_tracepoint":
      return attachRawTracepointLink(program, h.name);
    case "tp_btf":
      // The target (h.name) was fixed at load, from the program's section.
      return attachTracingLink(program, "trace_raw_tp");
    case "netfilter": {
      // The kernel holds one BPF program per netfilter hook and priority (EBUSY): a new version
      // goes beside the old one at the next priority, and the two alternate between p and p+1.
      const at = (priority: number) => attachNetfilterLink(program, { netns: h.netns, family: h.family, hook: h.hook, priority, defrag: h.defrag });
      try {
        return at(h.priority);
      } catch (e) {
        if ((e as { code?: string }).code !== "EBUSY") throw e;
        return at(h.priority + 1);
      }
    }
    case "sk_lookup":
    case "flow_dissector":
      return attachNetnsLink(program, h.netns, h.type);
    case "uprobe":
    case "uretprobe":
      return attachUprobeLink(program, { binary: h.binary, offset: uprobeOffset(h), retprobe: h.type === "uretprobe", ...(h.pid ? { pid: h.pid } : {}) });
    case "sk_msg":
    case "sk_skb": {
      const map = openPinnedMap(layout.map(opts.root, h.map));
      try {
        return attachSockmapLink(program, map, h.attachType);
      } finally {
        map.close();
      }
    }
    case "perf_event":
      return attachPerfEventLink(program, { name: h.event, frequency: h.frequency, cpu: h.cpu });
    case "fentry":
    case "fexit":
    case "kprobe":
    case "kretprobe":
    case "lsm":
      throw new NotSupportedError(h.type, `attaching ${h.type} programs is not implemented yet`);
  }
}

/**
 * Where symbols were found, by binary (its path, inode, size and change time) and symbol: every
 * observation asks (an agent's, each interval) and so does the attach, and a binary can be large.
 */
const symbolOffsets = new Map<string, number | null>();

/** A uprobe's file offset in its binary: its symbol's place (from the ELF symbol table) plus the offset. */
export function uprobeOffset(h: Extract<ConcreteHook, { type: "uprobe" | "uretprobe" }>): number {
  if (!h.symbol) return h.offset;
  let at: number | null | undefined;
  try {
    const st = statSync(h.binary);
    const key = `${h.binary}\0${st.ino}\0${st.size}\0${st.ctimeMs}\0${h.symbol}`;
    at = symbolOffsets.get(key);
    if (at === undefined) {
      at = elfFunctionOffset(readFileSync(h.binary), h.symbol);
      setBounded(symbolOffsets, key, at, 256);
    }
  } catch (e) {
    throw new BpfopsError("UprobeTarget", `uprobe target ${h.binary}: ${(e as Error).message}`, { errorClass: "Waiting", cause: e });
  }
  if (at === null) throw new BpfopsError("UprobeTarget", `uprobe target ${h.binary} has no function symbol ${h.symbol}`, { errorClass: "Waiting" });
  return at + h.offset;
}
