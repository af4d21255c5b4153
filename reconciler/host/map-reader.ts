// Reading maps back, for `bpfops map get|dump`: finds a map bpfops pinned (a Map manifest by name,
// an object map as PROGRAM/MAP, or a pin path), reads its key and value types from the kernel's
// BTF for it, and decodes entries with the same decoders the manifests' encoders mirror.
import { setBounded } from "../core/bounded-map.ts";
import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { parse as parseYaml } from "yaml";
import { MapHandle } from "../kernel/handles.ts";
import { native } from "../kernel/native.ts";
import { kernelCall } from "../kernel/errors.ts";
import { layout } from "../core/layout.ts";
import { mapTypesById, parseBtf, structByName } from "../core/btf.ts";
import type { TypeDesc } from "../core/type-desc.ts";
import { listPinPaths, openPinnedMap, openPinnedProgram } from "../kernel/pins.ts";
import { readProvenance } from "./provenance.ts";
import { relative } from "node:path";
import { decodeTyped, encodeEntryField, EncodeError } from "../core/typed-values.ts";
import type { MapTypes } from "../core/validate.ts";
import { BpfopsError } from "../core/errors.ts";

/** The pin of NAME: a Map manifest's name, PROGRAM/MAP for an object map, or a path. */
export function mapPin(root: string, name: string): string {
  if (isAbsolute(name)) return name;
  const pin = name.includes("/") ? `${layout.objectMapsDir(root, name.split("/")[0]!)}/${name.split("/").slice(1).join("/")}` : layout.map(root, name);
  if (!existsSync(pin)) throw new BpfopsError("NotFound", `no map ${name} under ${root} (${pin}): a Map manifest's name, PROGRAM/MAP for an object map, or a pin path`);
  return pin;
}

export function openMap(root: string, name: string): MapHandle {
  return openPinnedMap(mapPin(root, name));
}

/** The map's key and value types from the BTF the kernel holds for it; {} when it has none. */
export function kernelMapTypes(m: MapHandle): MapTypes {
  const i = m.info();
  if (!i.btfId || (!i.btfKeyTypeId && !i.btfValueTypeId)) return {};
  // A BTF object the kernel holds never changes: its types are parsed once per process (the
  // agent reads its declared metrics at every status report and every scrape).
  const memo = `${i.btfId}:${i.btfKeyTypeId}:${i.btfValueTypeId}:${i.typeName}:${m.keySize}`;
  const known = typesByBtf.get(memo);
  if (known) return known;
  let t: MapTypes;
  try {
    t = mapTypesById(parseBtf(kernelCall(() => native.btfRaw(i.btfId))), i.btfKeyTypeId, i.btfValueTypeId);
    // A data section's map (.data, .bss) has a value type and no key type: its one key is index 0.
    if (!t.key && t.value && i.typeName === "array" && m.keySize === 4) t.key = { kind: "int", name: "__u32", size: 4, signed: false };
  } catch {
    t = {}; // types the decoders do not handle: shown as bytes
  }
  setBounded(typesByBtf, memo, t, 64);
  return t;
}
const typesByBtf = new Map<string, MapTypes>();

/** A key given on the command line (YAML: `{ saddr: 10.0.0.1, dport: 80 }`, an integer or hex:...) as bytes. */
export function keyFromText(text: string, m: MapHandle, types: MapTypes): Buffer {
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (e) {
    throw new BpfopsError("InvalidArgument", `key: not YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  try {
    return encodeEntryField(v, m.keySize, types.key, "key");
  } catch (e) {
    if (e instanceof EncodeError) throw new BpfopsError("InvalidArgument", e.message);
    throw e;
  }
}

/** Sums the numbers of per-CPU values field by field. */
function sumValues(values: unknown[]): unknown {
  const first = values[0];
  if (typeof first === "number") return values.reduce((a: number, b) => a + (b as number), 0);
  if (typeof first === "string" && /^\d+$/.test(first)) return values.reduce((a: bigint, b) => a + BigInt(b as string), 0n).toString();
  if (Array.isArray(first)) return first.map((_, i) => sumValues(values.map((v) => (v as unknown[])[i])));
  if (first && typeof first === "object") return Object.fromEntries(Object.keys(first).map((k) => [k, sumValues(values.map((v) => (v as Record<string, unknown>)[k]))]));
  return first;
}

export interface DecodedEntry {
  key: unknown;
  /** per-CPU maps: one value per CPU, unless summed */
  value: unknown;
}

/** A key decoded by the map's key type (hex:... where it is not known). */
export function decodeEntryKey(types: MapTypes, key: Buffer): unknown {
  return types.key ? decodeTyped(key, types.key) : `hex:${key.toString("hex")}`;
}

/** An entry decoded by the map's types (hex:... where a type is not known). */
export function decodeEntry(m: MapHandle, types: MapTypes, key: Buffer, value: Buffer, opts: { sum?: boolean } = {}): DecodedEntry {
  const dk = decodeEntryKey(types, key);
  const one = (b: Buffer) => (types.value ? decodeTyped(b, types.value) : `hex:${b.toString("hex")}`);
  if (!m.perCpu) return { key: dk, value: one(value) };
  const perCpu = m.splitPerCpu(value).map(one);
  return { key: dk, value: opts.sum ? sumValues(perCpu) : perCpu };
}

/**
 * The struct a map of records holds (its Map manifest's recordType, or `name` given), described by
 * the BTF of a program bpfops loaded that uses the map; null when none says it.
 */
export function recordTypeOf(root: string, m: MapHandle, pin: string, name?: string): { name: string; type: TypeDesc } | null {
  const recordType = name ?? readProvenance(root).get(relative(root, pin))?.recordType;
  if (!recordType) return null;
  for (const p of listPinPaths(`${root}/programs`)) {
    const prog = openPinnedProgram(p);
    try {
      const info = prog.info();
      if (!info.mapIds.includes(m.id) || !info.btfId) continue;
      const t = structByName(parseBtf(kernelCall(() => native.btfRaw(info.btfId))), recordType);
      if (t) return { name: recordType, type: t };
    } finally {
      prog.close();
    }
  }
  return null;
}
