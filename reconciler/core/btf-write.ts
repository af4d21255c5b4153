// Raw BTF for a map's key and value types, so that a Map bpfops creates carries its types in the
// kernel like a libbpf map does: `bpfops map dump` and `bpftool map dump` then show fields by
// name, with or without the repository. The inverse of describeType in core/btf.ts. Pure.
import type { TypeDesc } from "./type-desc.ts";

const KIND = { INT: 1, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, TYPEDEF: 8, FLOAT: 16 } as const;
const INT_SIGNED = 1;
const INT_CHAR = 2;
const INT_BOOL = 4;

class Writer {
  private readonly strings: string[] = [""];
  private strLen = 1;
  private readonly stringOffsets = new Map<string, number>([["", 0]]);
  private readonly types: Buffer[] = [];
  private readonly memo = new Map<string, number>();

  str(s: string): number {
    let off = this.stringOffsets.get(s);
    if (off === undefined) {
      off = this.strLen;
      this.stringOffsets.set(s, off);
      this.strings.push(s);
      this.strLen += Buffer.byteLength(s) + 1;
    }
    return off;
  }

  private add(name: string, kind: number, vlen: number, sizeOrType: number, extra: number[], kindFlag = false): number {
    const b = Buffer.alloc(12 + 4 * extra.length);
    b.writeUInt32LE(this.str(name), 0);
    b.writeUInt32LE((((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen) >>> 0, 4);
    b.writeUInt32LE(sizeOrType, 8);
    extra.forEach((w, i) => b.writeUInt32LE(w >>> 0, 12 + 4 * i));
    this.types.push(b);
    return this.types.length; // type ids start at 1
  }

  private int(name: string, size: number, encoding: number): number {
    const key = `int:${name}:${size}:${encoding}`;
    let id = this.memo.get(key);
    if (id === undefined) this.memo.set(key, (id = this.add(name, KIND.INT, 0, size, [(encoding << 24) | (size * 8)])));
    return id;
  }

  /** The id of type t, written on first use. */
  type(t: TypeDesc): number {
    switch (t.kind) {
      case "int": {
        if (t.bool) return this.int("_Bool", 1, INT_BOOL);
        if (t.char && t.size === 1) return this.int("char", 1, INT_SIGNED | INT_CHAR);
        const base = `${t.signed ? "s" : "u"}${t.size * 8}`;
        const id = this.int(t.signed ? `__s${t.size * 8}` : `__u${t.size * 8}`, t.size, t.signed ? INT_SIGNED : 0);
        // __be16, ipv4 and the like: a typedef keeps the name, which says the byte order
        return t.name && t.name !== base && !/^__[su]\d+$/.test(t.name) && t.name !== "pointer" ? this.add(t.name, KIND.TYPEDEF, 0, id, []) : id;
      }
      case "enum": {
        const names = Object.entries(t.values);
        return this.add(t.name, KIND.ENUM, names.length, t.size, names.flatMap(([n, v]) => [this.str(n), v]), !t.signed);
      }
      case "float":
        return this.add(t.name || `float${t.size * 8}`, KIND.FLOAT, 0, t.size, []);
      case "array": {
        const elem = this.type(t.elem);
        const index = this.int("__u32", 4, 0);
        const id = this.add("", KIND.ARRAY, 0, 0, [elem, index, t.count]);
        return t.name && t.name !== "char" ? this.add(t.name, KIND.TYPEDEF, 0, id, []) : id;
      }
      case "struct":
      case "union": {
        const members = t.members.map((m) => [this.str(m.name), this.type(m.type), m.bitSize ? (m.bitSize << 24) | m.bitOffset : m.bitOffset] as const);
        const bitfields = t.members.some((m) => m.bitSize);
        return this.add(t.name, t.kind === "struct" ? KIND.STRUCT : KIND.UNION, members.length, t.size, members.flat(), bitfields);
      }
    }
  }

  bytes(): Buffer {
    const types = Buffer.concat(this.types);
    const strings = Buffer.concat(this.strings.map((s) => Buffer.from(`${s}\0`)));
    const hdr = Buffer.alloc(24);
    hdr.writeUInt16LE(0xeb9f, 0);
    hdr[2] = 1; // version
    hdr.writeUInt32LE(24, 4); // header length
    hdr.writeUInt32LE(0, 8); // types at 0
    hdr.writeUInt32LE(types.length, 12);
    hdr.writeUInt32LE(types.length, 16); // strings after the types
    hdr.writeUInt32LE(strings.length, 20);
    return Buffer.concat([hdr, types, strings]);
  }
}

/** Bytes of no known type: shown as "hex:..." (the kernel wants a type for both key and value). */
const rawBytes = (size: number): TypeDesc => ({ kind: "array", name: "hex", size, count: size, elem: { kind: "int", name: "__u8", size: 1, signed: false } });

/** Raw BTF holding a map's key and value types, with their type ids. */
export function mapBtf(types: { key?: TypeDesc; value?: TypeDesc }, keySize: number, valueSize: number): { btf: Buffer; keyTypeId: number; valueTypeId: number } {
  const w = new Writer();
  const keyTypeId = w.type(types.key ?? rawBytes(keySize));
  const valueTypeId = w.type(types.value ?? rawBytes(valueSize));
  return { btf: w.bytes(), keyTypeId, valueTypeId };
}
