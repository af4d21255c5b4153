// BTF, the kernel's type format, read from an object's .BTF section (or raw BTF the kernel hands
// back): the key and value types of a map, resolved into self-contained type descriptions that
// the typed entry encoders and decoders use. Pure: bytes in, plain data out.
import { cstring, elfSections } from "./elf.ts";
import type { TypeDesc, Member } from "./type-desc.ts";

const KIND = { INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10, RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19 } as const;

interface RawType {
  kind: number;
  name: string;
  vlen: number;
  kindFlag: boolean;
  /** size, or the referenced type id */
  sizeOrType: number;
  /** kind-specific words after the common header */
  words: number[];
  /** names of vlen records (struct members, enum values, datasec vars by id) */
  names: string[];
}

export interface Btf {
  types: RawType[];
}

/** Raw BTF's type records and string table, from its header. */
export function btfSections(btf: Buffer): { types: Buffer; strings: Buffer } {
  if (btf.length < 24 || btf.readUInt16LE(0) !== 0xeb9f) throw new Error("not BTF (bad magic)");
  const hdrLen = btf.readUInt32LE(4);
  const typeOff = hdrLen + btf.readUInt32LE(8);
  const strOff = hdrLen + btf.readUInt32LE(16);
  return { types: btf.subarray(typeOff, typeOff + btf.readUInt32LE(12)), strings: btf.subarray(strOff, strOff + btf.readUInt32LE(20)) };
}

/** Parses raw BTF (the contents of a .BTF section). Type id n is types[n]; types[0] is void. */
export function parseBtf(btf: Buffer): Btf {
  const { types: records, strings } = btfSections(btf);
  const name = (off: number) => cstring(strings, off);
  const types: RawType[] = [{ kind: 0, name: "void", vlen: 0, kindFlag: false, sizeOrType: 0, words: [], names: [] }];
  let o = 0;
  while (o < records.length) {
    const info = records.readUInt32LE(o + 4);
    const t: RawType = { kind: (info >>> 24) & 0x1f, name: name(records.readUInt32LE(o)), vlen: info & 0xffff, kindFlag: info >>> 31 === 1, sizeOrType: records.readUInt32LE(o + 8), words: [], names: [] };
    o += 12;
    const take = (n: number) => {
      for (let i = 0; i < n; i++) t.words.push(records.readUInt32LE(o + 4 * i));
      o += 4 * n;
    };
    switch (t.kind) {
      case KIND.INT:
      case KIND.VAR:
      case KIND.DECL_TAG:
        take(1);
        break;
      case KIND.ARRAY:
        take(3);
        break;
      case KIND.STRUCT:
      case KIND.UNION:
      case KIND.DATASEC:
      case KIND.ENUM64:
        take(3 * t.vlen);
        break;
      case KIND.ENUM:
      case KIND.FUNC_PROTO:
        take(2 * t.vlen);
        break;
      default:
        break;
    }
    if (t.kind === KIND.STRUCT || t.kind === KIND.UNION || t.kind === KIND.ENUM64) for (let i = 0; i < t.vlen; i++) t.names.push(name(t.words[3 * i]!));
    if (t.kind === KIND.ENUM) for (let i = 0; i < t.vlen; i++) t.names.push(name(t.words[2 * i]!));
    types.push(t);
  }
  return { types };
}

/** The .BTF section of an object file, parsed; null when it has none. */
export function objectBtf(object: Buffer): Btf | null {
  const sec = elfSections(object).find((s) => s.name === ".BTF");
  return sec ? parseBtf(object.subarray(sec.offset, sec.offset + sec.size)) : null;
}

const BE_TYPEDEF = /^__be(16|32|64)$/;

/** Resolves type id into a self-contained description (typedefs and qualifiers followed). */
export function describeType(btf: Btf, id: number, depth = 0): TypeDesc {
  if (depth > 32) throw new Error("BTF types nest too deep");
  const t = btf.types[id];
  if (!t) throw new Error(`BTF has no type ${id}`);
  switch (t.kind) {
    case KIND.INT: {
      const enc = (t.words[0]! >>> 24) & 0x0f;
      return { kind: "int", name: t.name, size: t.sizeOrType, signed: (enc & 1) === 1, ...(enc & 2 || t.name === "char" ? { char: true } : {}), ...(enc & 4 ? { bool: true } : {}) };
    }
    case KIND.TYPEDEF: {
      const inner = describeType(btf, t.sizeOrType, depth + 1);
      // __be16/__be32/__be64: integers stored in network byte order
      // (ipv4: bpfops's own name for an address field of a Map it created with BTF)
      if ((BE_TYPEDEF.test(t.name) || t.name === "ipv4") && inner.kind === "int") return { ...inner, name: t.name, bigEndian: true };
      if (inner.kind === "array") return { ...inner, name: t.name };
      return inner.kind === "struct" || inner.kind === "union" || inner.kind === "enum" ? { ...inner, name: inner.name || t.name } : inner.kind === "int" ? { ...inner, name: t.name } : inner;
    }
    case KIND.VOLATILE:
    case KIND.CONST:
    case KIND.RESTRICT:
    case KIND.TYPE_TAG:
      return describeType(btf, t.sizeOrType, depth + 1);
    case KIND.ENUM:
    case KIND.ENUM64: {
      const values: Record<string, number> = {};
      const stride = t.kind === KIND.ENUM ? 2 : 3;
      for (let i = 0; i < t.vlen; i++) {
        const lo = t.words[stride * i + 1]!;
        values[t.names[i]!] = t.kind === KIND.ENUM ? (t.kindFlag ? lo : lo | 0) : Number((BigInt(t.words[stride * i + 2]!) << 32n) | BigInt(lo));
      }
      return { kind: "enum", name: t.name, size: t.sizeOrType, signed: !t.kindFlag, values };
    }
    case KIND.STRUCT:
    case KIND.UNION: {
      const members: Member[] = [];
      for (let i = 0; i < t.vlen; i++) {
        const off = t.words[3 * i + 2]!;
        const bitSize = t.kindFlag ? off >>> 24 : 0;
        members.push({ name: t.names[i]!, bitOffset: t.kindFlag ? off & 0xffffff : off, ...(bitSize ? { bitSize } : {}), type: describeType(btf, t.words[3 * i + 1]!, depth + 1) });
      }
      return { kind: t.kind === KIND.STRUCT ? "struct" : "union", name: t.name, size: t.sizeOrType, members };
    }
    case KIND.ARRAY: {
      const elem = describeType(btf, t.words[0]!, depth + 1);
      const count = t.words[2]!;
      return { kind: "array", name: "", size: elem.size * count, count, elem };
    }
    case KIND.PTR:
      return { kind: "int", name: "pointer", size: 8, signed: false };
    case KIND.VAR:
      return describeType(btf, t.sizeOrType, depth + 1);
    case KIND.DATASEC: {
      // A data section (.data, .bss, .rodata) reads as a struct of its variables at their offsets:
      // the value of a libbpf internal map.
      const members: Member[] = [];
      for (let i = 0; i < t.vlen; i++) {
        const v = btf.types[t.words[3 * i]!];
        if (!v || v.kind !== KIND.VAR) continue;
        members.push({ name: v.name, bitOffset: t.words[3 * i + 1]! * 8, type: describeType(btf, v.sizeOrType, depth + 1) });
      }
      return { kind: "struct", name: t.name, size: t.sizeOrType, members };
    }
    case KIND.FLOAT:
      return { kind: "float", name: t.name, size: t.sizeOrType };
    default:
      throw new Error(`BTF type ${id} (${t.name || "anonymous"}) is a kind maps do not hold (${t.kind})`);
  }
}

/** The key and value types of a map an object declares in .maps (`__type(key, T)`), when it says them. */
export function mapTypesInObject(btf: Btf, mapName: string): { key?: TypeDesc; value?: TypeDesc } | null {
  for (const sec of btf.types) {
    if (sec.kind !== KIND.DATASEC || sec.name !== ".maps") continue;
    for (let i = 0; i < sec.vlen; i++) {
      const v = btf.types[sec.words[3 * i]!];
      if (!v || v.kind !== KIND.VAR || v.name !== mapName) continue;
      let def = btf.types[v.sizeOrType];
      while (def && (def.kind === KIND.TYPEDEF || def.kind === KIND.CONST || def.kind === KIND.VOLATILE)) def = btf.types[def.sizeOrType];
      if (!def || def.kind !== KIND.STRUCT) return null;
      const out: { key?: TypeDesc; value?: TypeDesc } = {};
      for (let m = 0; m < def.vlen; m++) {
        const field = def.names[m];
        if (field !== "key" && field !== "value") continue;
        const ptr = btf.types[def.words[3 * m + 1]!];
        // __type(key, T) is `typeof(T) *key`; __uint(key_size, N) says only a size.
        if (ptr?.kind === KIND.PTR) out[field] = describeType(btf, ptr.sizeOrType);
      }
      return out;
    }
  }
  return null;
}

/** Every .maps map of an object with the key and value types its BTF gives; {} without BTF. */
export function objectMapTypes(object: Buffer): Record<string, { key?: TypeDesc; value?: TypeDesc }> {
  const out: Record<string, { key?: TypeDesc; value?: TypeDesc }> = {};
  let btf: Btf | null;
  try {
    btf = objectBtf(object);
  } catch {
    return out;
  }
  if (!btf) return out;
  for (const sec of btf.types) {
    if (sec.kind !== KIND.DATASEC || sec.name !== ".maps") continue;
    for (let i = 0; i < sec.vlen; i++) {
      const v = btf.types[sec.words[3 * i]!];
      if (!v || v.kind !== KIND.VAR) continue;
      try {
        const t = mapTypesInObject(btf, v.name);
        if (t && (t.key || t.value)) out[v.name] = t;
      } catch {
        // a type the encoders do not handle: the map's entries stay raw bytes
      }
    }
  }
  return out;
}

/** The data sections whose variables a manifest may set: libbpf's internal maps. */
export const GLOBAL_SECTIONS = [".rodata", ".data", ".bss"] as const;

/** Every global variable of an object (.rodata, .data, .bss) with its section and, where the encoders handle it, its type. */
export function objectGlobalTypes(object: Buffer): Record<string, { section: string; type?: TypeDesc }> {
  const out: Record<string, { section: string; type?: TypeDesc }> = {};
  let btf: Btf | null;
  try {
    btf = objectBtf(object);
  } catch {
    return out;
  }
  for (const sec of btf?.types ?? []) {
    if (sec.kind !== KIND.DATASEC || !(GLOBAL_SECTIONS as readonly string[]).includes(sec.name)) continue;
    for (let i = 0; i < sec.vlen; i++) {
      const v = btf!.types[sec.words[3 * i]!];
      if (!v || v.kind !== KIND.VAR) continue;
      let type: TypeDesc | undefined;
      try {
        type = describeType(btf!, v.sizeOrType);
      } catch {
        // a type the encoders do not handle: raw bytes only
      }
      out[v.name] = { section: sec.name, ...(type ? { type } : {}) };
    }
  }
  return out;
}

/** The struct named name in BTF, described; null when there is none. */
export function structByName(btf: Btf, name: string): TypeDesc | null {
  const id = btf.types.findIndex((t) => t.kind === KIND.STRUCT && t.name === name);
  return id > 0 ? describeType(btf, id) : null;
}

/** The names of the structs an object's BTF holds. */
export function objectStructNames(object: Buffer): string[] {
  try {
    return (objectBtf(object)?.types ?? []).filter((t) => t.kind === KIND.STRUCT && t.name).map((t) => t.name);
  } catch {
    return [];
  }
}

/** The key and value types of a map whose BTF ids the kernel reports (map info btf_key_type_id, btf_value_type_id). */
export function mapTypesById(btf: Btf, keyTypeId: number, valueTypeId: number): { key?: TypeDesc; value?: TypeDesc } {
  return { ...(keyTypeId ? { key: describeType(btf, keyTypeId) } : {}), ...(valueTypeId ? { value: describeType(btf, valueTypeId) } : {}) };
}
