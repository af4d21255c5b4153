// Type descriptions of map keys and values: from an object's BTF (core/btf.ts) or declared in a
// Map manifest (`keyType`, `valueType`) when the map has no BTF. Self-contained plain data, so a
// description can be recorded beside a pin and used to decode the map later. Pure.

export interface Member {
  name: string;
  /** offset from the start of the struct, in bits */
  bitOffset: number;
  /** bitfields: width in bits */
  bitSize?: number;
  type: TypeDesc;
}

export type TypeDesc =
  | { kind: "int"; name: string; size: number; signed: boolean; bigEndian?: boolean; char?: boolean; bool?: boolean }
  | { kind: "enum"; name: string; size: number; signed: boolean; values: Record<string, number> }
  | { kind: "float"; name: string; size: number }
  | { kind: "struct" | "union"; name: string; size: number; members: Member[] }
  | { kind: "array"; name: string; size: number; count: number; elem: TypeDesc };

const int = (name: string, size: number, signed: boolean, extra: Partial<Extract<TypeDesc, { kind: "int" }>> = {}): TypeDesc => ({ kind: "int", name, size, signed, ...extra });

/** The scalar type names a manifest may declare, C's and the kernel's spellings. */
const SCALARS: Record<string, TypeDesc> = {
  u8: int("u8", 1, false), u16: int("u16", 2, false), u32: int("u32", 4, false), u64: int("u64", 8, false),
  s8: int("s8", 1, true), s16: int("s16", 2, true), s32: int("s32", 4, true), s64: int("s64", 8, true),
  __u8: int("__u8", 1, false), __u16: int("__u16", 2, false), __u32: int("__u32", 4, false), __u64: int("__u64", 8, false),
  __s8: int("__s8", 1, true), __s16: int("__s16", 2, true), __s32: int("__s32", 4, true), __s64: int("__s64", 8, true),
  __be16: int("__be16", 2, false, { bigEndian: true }), __be32: int("__be32", 4, false, { bigEndian: true }), __be64: int("__be64", 8, false, { bigEndian: true }),
  char: int("char", 1, true, { char: true }), bool: int("bool", 1, false, { bool: true }),
  // Names for what a field holds: written and shown as addresses.
  ipv4: int("ipv4", 4, false, { bigEndian: true }),
};
const NAMED: Record<string, () => TypeDesc> = {
  ipv6: () => ({ kind: "array", name: "ipv6", size: 16, count: 16, elem: SCALARS.u8! }),
  mac: () => ({ kind: "array", name: "mac", size: 6, count: 6, elem: SCALARS.u8! }),
};

function alignOf(t: TypeDesc): number {
  if (t.kind === "array") return alignOf(t.elem);
  if (t.kind === "struct" || t.kind === "union") return Math.max(1, ...t.members.map((m) => alignOf(m.type)));
  return Math.min(t.size, 8);
}

/**
 * A declared type: a scalar name ("u32", "__be16", "ipv4", "ipv6", "mac"), an array ("u8[16]",
 * "char[16]"), or a struct as a list of one-field mappings in order ([{saddr: ipv4}, {dport:
 * __be16}]) laid out with C's alignment. Returns the description or why it is not one.
 */
export function parseDeclaredType(v: unknown, path = ""): TypeDesc | string {
  if (typeof v === "string") {
    const arr = /^(\w+)\[(\d+)\]$/.exec(v);
    if (arr) {
      const elem = parseDeclaredType(arr[1], path);
      const count = Number(arr[2]);
      if (typeof elem === "string") return elem;
      if (count < 1 || count > 65536) return `${path || "type"}: ${v}: an array of 1 to 65536 elements`;
      return { kind: "array", name: elem.kind === "int" && elem.char ? "char" : "", size: elem.size * count, count, elem };
    }
    const s = SCALARS[v] ?? NAMED[v]?.();
    return s ?? `${path || "type"}: unknown type "${v}" (u8..u64, s8..s64, __be16/32/64, char, bool, ipv4, ipv6, mac, T[N], or a list of fields)`;
  }
  if (Array.isArray(v)) {
    const members: Member[] = [];
    let offset = 0;
    let align = 1;
    for (const [i, f] of v.entries()) {
      if (typeof f !== "object" || f === null || Array.isArray(f) || Object.keys(f).length !== 1) return `${path}[${i}]: a field is one mapping, name: type`;
      const [name, tv] = Object.entries(f)[0]!;
      if (!/^[A-Za-z_]\w*$/.test(name)) return `${path}[${i}]: "${name}" is not a field name`;
      if (members.some((m) => m.name === name)) return `${path}[${i}]: field ${name} is declared twice`;
      const t = parseDeclaredType(tv, `${path}[${i}].${name}`);
      if (typeof t === "string") return t;
      const a = alignOf(t);
      offset = Math.ceil(offset / a) * a;
      members.push({ name, bitOffset: offset * 8, type: t });
      offset += t.size;
      align = Math.max(align, a);
    }
    if (!members.length) return `${path || "type"}: a struct needs at least one field`;
    return { kind: "struct", name: "", size: Math.ceil(offset / align) * align, members };
  }
  return `${path || "type"}: a type name ("u32") or a list of fields ([{port: __be16}, ...])`;
}

/** C-like text of a type, for messages and `map dump` headers: "struct { __be32 saddr; ... }". */
export function typeName(t: TypeDesc): string {
  if (t.kind === "array") return `${typeName(t.elem)}[${t.count}]`;
  if (t.kind === "struct" || t.kind === "union") return t.name ? `${t.kind} ${t.name}` : `${t.kind} { ${t.members.map((m) => `${typeName(m.type)} ${m.name}${m.bitSize ? `:${m.bitSize}` : ""};`).join(" ")} }`;
  if (t.kind === "enum") return t.name ? `enum ${t.name}` : "enum";
  return t.name;
}
