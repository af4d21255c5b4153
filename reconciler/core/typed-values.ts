// Typed map keys and values: YAML/JSON structures encoded to the bytes a map holds, and bytes
// decoded back, by a type description (core/type-desc.ts). Fields by name, enums by name, nested
// structs, arrays, bitfields, unions (one member chosen), IPv4/IPv6 addresses, CIDR prefixes for
// LPM trie keys, MAC addresses, ports in network byte order where the field is __be16, protocol
// names for proto fields; "hex:..." is raw bytes at any level. Every error names the field path
// ("value.rules[0].port: 70000 does not fit __be16"). Pure.
import { isIP } from "node:net";
import { typeName, type Member, type TypeDesc } from "./type-desc.ts";
import { encodeEntryBytes, encodeValue } from "./bytes.ts";

export class EncodeError extends Error {
  /** the field path, e.g. value.rules[0].port */
  readonly path: string;
  /** what is wrong, without the path */
  readonly detail: string;
  constructor(path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.path = path;
    this.detail = detail;
  }
}

const PROTOCOLS: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, icmpv6: 58, sctp: 132 };
const PROTOCOL_NAMES = Object.fromEntries(Object.entries(PROTOCOLS).map(([k, v]) => [v, k]));
/** Fields shown as addresses when decoded (encoding accepts an address for any field of that size). */
const ADDRESS_FIELD = /addr|(^|_)ip(v[46])?($|_)|^src$|^dst$|nexthop|gateway|^gw$/i;
const PROTO_FIELD = /proto/i;
const MAC_FIELD = /mac|hwaddr|ether/i;

function ipv4Bytes(s: string): Buffer | null {
  if (isIP(s) !== 4) return null;
  return Buffer.from(s.split(".").map(Number));
}

function ipv6Bytes(s: string): Buffer | null {
  if (isIP(s) !== 6) return null;
  // Expand "::" and an embedded IPv4 tail into eight groups.
  let text = s;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipv4Bytes(v4[1]!)!;
    text = text.slice(0, -v4[1]!.length) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function macBytes(s: string): Buffer | null {
  return /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(s) ? Buffer.from(s.replace(/[:-]/g, ""), "hex") : null;
}

/** "10.0.0.0/8" or "2001:db8::/32" -> address bytes and prefix length; null when not a CIDR. */
export function parseCidr(s: string): { bytes: Buffer; bits: number } | null {
  const m = /^(.+)\/(\d{1,3})$/.exec(s);
  if (!m) return null;
  const bytes = ipv4Bytes(m[1]!) ?? ipv6Bytes(m[1]!);
  const bits = Number(m[2]);
  if (!bytes || bits > bytes.length * 8) return null;
  return { bytes, bits };
}

function formatIpv6(b: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16));
  // the longest run of zero groups (two or more) becomes "::"
  let best = -1;
  let len = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > len && j - i > 1) [best, len] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + len).join(":")}`;
}

const isLpmKey = (t: TypeDesc): t is Extract<TypeDesc, { members: Member[] }> =>
  t.kind === "struct" && t.members.length >= 2 && t.members[0]!.name === "prefixlen" && t.members[0]!.type.kind === "int" && t.members[0]!.type.size === 4;

function intRange(t: { size: number; signed: boolean }): [bigint, bigint] {
  const bits = BigInt(t.size * 8);
  return t.signed ? [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n] : [0n, (1n << bits) - 1n];
}

function writeInt(out: Buffer, at: number, n: bigint, t: { size: number; bigEndian?: boolean }): void {
  const u = BigInt.asUintN(t.size * 8, n);
  for (let i = 0; i < t.size; i++) out[at + (t.bigEndian ? t.size - 1 - i : i)] = Number((u >> BigInt(8 * i)) & 0xffn);
}

function readInt(b: Buffer, at: number, t: { size: number; signed: boolean; bigEndian?: boolean }): bigint {
  let u = 0n;
  for (let i = 0; i < t.size; i++) u |= BigInt(b[at + (t.bigEndian ? t.size - 1 - i : i)]!) << BigInt(8 * i);
  return t.signed ? BigInt.asIntN(t.size * 8, u) : u;
}

function integerOf(v: unknown, t: Extract<TypeDesc, { kind: "int" | "enum" }>, path: string, field: string): bigint {
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new EncodeError(path, `${v} is not an integer (${typeName(t)})`);
    return BigInt(v);
  }
  if (typeof v === "string") {
    if (t.kind === "enum" && v in t.values) return BigInt(t.values[v]!);
    if (t.kind === "int" && t.size === 4) {
      const a = ipv4Bytes(v);
      // an address is written in network byte order whatever the field's declared order
      if (a) return t.bigEndian ? BigInt(a.readUInt32BE(0)) : BigInt(a.readUInt32LE(0));
    }
    if (t.size === 1 && PROTO_FIELD.test(field) && v.toLowerCase() in PROTOCOLS) return BigInt(PROTOCOLS[v.toLowerCase()]!);
    if (/^-?(0x[0-9a-fA-F]+|\d+)$/.test(v)) return BigInt(v);
    if (t.kind === "enum") throw new EncodeError(path, `"${v}" is not one of ${typeName(t)}: ${Object.keys(t.values).join(", ")}`);
  }
  throw new EncodeError(path, `${JSON.stringify(v)} is not a value of ${typeName(t)}`);
}

/** Writes v as type t into out at byte offset at. */
function encodeInto(out: Buffer, at: number, v: unknown, t: TypeDesc, path: string, field: string): void {
  if (typeof v === "string" && v.startsWith("hex:")) {
    const b = Buffer.from(v.slice(4).replace(/\s+/g, ""), "hex");
    if (!/^hex:(\s*[0-9a-fA-F]{2})+\s*$/.test(v) || b.length !== t.size) throw new EncodeError(path, `${v.length > 40 ? v.slice(0, 40) + "..." : v} is not ${t.size} bytes of hex (${typeName(t)})`);
    b.copy(out, at);
    return;
  }
  switch (t.kind) {
    case "int":
    case "enum": {
      const n = integerOf(v, t, path, field);
      const [lo, hi] = intRange(t);
      if (n < lo || n > hi) throw new EncodeError(path, `${v} does not fit ${typeName(t)}`);
      writeInt(out, at, n, { size: t.size, ...(t.kind === "int" && t.bigEndian ? { bigEndian: true } : {}) });
      return;
    }
    case "float":
      if (typeof v !== "number") throw new EncodeError(path, `${JSON.stringify(v)} is not a number (${typeName(t)})`);
      if (t.size === 4) out.writeFloatLE(v, at);
      else if (t.size === 8) out.writeDoubleLE(v, at);
      else throw new EncodeError(path, `a ${t.size}-byte float is not supported`);
      return;
    case "array": {
      if (typeof v === "string") {
        const bytes = (t.size === 4 && ipv4Bytes(v)) || (t.size === 16 && ipv6Bytes(v)) || (t.size === 6 && macBytes(v)) || null;
        if (bytes) return void bytes.copy(out, at);
        if (t.elem.kind === "int" && t.elem.size === 1) {
          const s = Buffer.from(v, "utf8");
          if (s.length > t.count) throw new EncodeError(path, `"${v}" is ${s.length} bytes; ${typeName(t)} holds ${t.count}`);
          return void s.copy(out, at);
        }
      }
      if (!Array.isArray(v)) throw new EncodeError(path, `${JSON.stringify(v)} is not a list (${typeName(t)})`);
      if (v.length > t.count) throw new EncodeError(path, `${v.length} elements; ${typeName(t)} holds ${t.count}`);
      v.forEach((x, i) => encodeInto(out, at + i * t.elem.size, x, t.elem, `${path}[${i}]`, field));
      return;
    }
    case "struct":
    case "union": {
      if (typeof v === "string") {
        const cidr = parseCidr(v);
        if (cidr && isLpmKey(t) && t.members[1]!.type.size + 4 <= t.size && cidr.bytes.length <= t.size - 4) {
          out.writeUInt32LE(cidr.bits, at);
          return void cidr.bytes.copy(out, at + 4);
        }
        const addr = (t.size === 4 && ipv4Bytes(v)) || (t.size === 16 && ipv6Bytes(v)) || null;
        if (addr) return void addr.copy(out, at);
      }
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new EncodeError(path, `${JSON.stringify(v)} is not a mapping of fields (${typeName(t)})`);
      const given = Object.entries(v as Record<string, unknown>);
      for (const [k] of given) {
        if (!t.members.some((m) => m.name === k)) throw new EncodeError(path ? `${path}.${k}` : k, `${typeName(t)} has no field ${k} (fields: ${t.members.map((m) => m.name).join(", ")})`);
      }
      if (t.kind === "union" && given.length !== 1) throw new EncodeError(path, `a union: give exactly one of ${t.members.map((m) => m.name).join(", ")}`);
      let prefixlen: number | null = null;
      for (const [k, x] of given) {
        const m = t.members.find((mm) => mm.name === k)!;
        const sub = path ? `${path}.${k}` : k;
        // An LPM trie key written by its address field: "10.0.0.0/8" sets prefixlen too.
        if (isLpmKey(t) && k !== "prefixlen" && typeof x === "string" && x.includes("/")) {
          const cidr = parseCidr(x);
          if (!cidr || cidr.bytes.length !== m.type.size) throw new EncodeError(sub, `"${x}" is not a CIDR prefix that fits ${typeName(m.type)}`);
          cidr.bytes.copy(out, at + m.bitOffset / 8);
          prefixlen = m.bitOffset - 32 + cidr.bits;
          continue;
        }
        if (m.bitSize) encodeBitfield(out, at, m, x, sub);
        else encodeInto(out, at + m.bitOffset / 8, x, m.type, sub, k);
      }
      if (prefixlen !== null) {
        if ("prefixlen" in (v as object)) throw new EncodeError(path ? `${path}.prefixlen` : "prefixlen", "give prefixlen or a CIDR prefix, not both");
        out.writeUInt32LE(prefixlen, at);
      }
      return;
    }
  }
}

function encodeBitfield(out: Buffer, at: number, m: Member, v: unknown, path: string): void {
  if (m.type.kind !== "int" && m.type.kind !== "enum") throw new EncodeError(path, "a bitfield of a type that is not an integer");
  const n = integerOf(v, m.type, path, m.name);
  const max = (1n << BigInt(m.bitSize!)) - 1n;
  if (n < 0n || n > max) throw new EncodeError(path, `${v} does not fit ${m.bitSize} bits`);
  const first = Math.floor(m.bitOffset / 8);
  const last = Math.floor((m.bitOffset + m.bitSize! - 1) / 8);
  let word = 0n;
  for (let i = last; i >= first; i--) word = (word << 8n) | BigInt(out[at + i]!);
  const shift = BigInt(m.bitOffset - first * 8);
  word = (word & ~(max << shift)) | (n << shift);
  for (let i = first; i <= last; i++, word >>= 8n) out[at + i] = Number(word & 0xffn);
}

/** Encodes v (a YAML or JSON value) as type t; throws EncodeError naming the field path under path. */
export function encodeTyped(v: unknown, t: TypeDesc, path: string): Buffer {
  const out = Buffer.alloc(t.size);
  encodeInto(out, 0, v, t, path, path.split(".").pop() ?? "");
  return out;
}

/**
 * A whole key or value as a manifest (or `map get`) writes it: a structure of its type when the
 * type is known; "hex:" bytes, and an integer where the type is not a number, are raw bytes, as
 * they are where no type is known. Throws EncodeError naming path.
 */
export function encodeEntryField(v: unknown, size: number, type: TypeDesc | undefined, path: string): Buffer {
  const raw = typeof v === "string" && v.startsWith("hex:");
  if (type && !raw && !(typeof v === "number" && type.kind !== "int" && type.kind !== "enum" && type.kind !== "float")) return encodeTyped(v, type, path);
  const b = encodeEntryBytes(v, size);
  if (typeof b === "string") throw new EncodeError(path, `${path} ${b} (${path.split(".")[0]}Size ${size}${type ? "" : "; no type is known for this map: declare keyType/valueType, or bind it to an object map with BTF"})`);
  return b;
}

/**
 * A global variable's value as a manifest sets it: an integer or boolean (little-endian at the
 * variable's size) and "hex:" bytes as they are; a string, a list or a structure by the
 * variable's BTF type (a char array from a string, a struct from its fields). Throws EncodeError.
 */
export function encodeGlobal(v: unknown, size: number, type: TypeDesc | undefined, path: string): Buffer {
  if (typeof v === "number" || typeof v === "boolean" || (typeof v === "string" && v.startsWith("hex:"))) {
    const b = encodeValue(v, size);
    if (!b) throw new EncodeError(path, `${path}: ${JSON.stringify(v)} does not fit the variable (${size} bytes)`);
    return b;
  }
  if (!type) throw new EncodeError(path, `${path}: the object's BTF gives no type this value could be encoded as; give "hex:" bytes (${size})`);
  const b = encodeTyped(v, type, path);
  if (b.length !== size) throw new EncodeError(path, `${path}: ${typeName(type)} is ${b.length} bytes, the variable ${size}`);
  return b;
}

/** Decodes bytes of type t into the structure encodeTyped takes (so that a dump can be written back). */
export function decodeTyped(b: Buffer, t: TypeDesc, field = ""): unknown {
  switch (t.kind) {
    case "int": {
      if (t.size === 4 && (t.name === "ipv4" || (t.bigEndian && ADDRESS_FIELD.test(field)))) return [...b.subarray(0, 4)].join(".");
      const n = readInt(b, 0, t);
      if (t.bool) return n !== 0n;
      if (t.size === 1 && PROTO_FIELD.test(field) && PROTOCOL_NAMES[Number(n)]) return PROTOCOL_NAMES[Number(n)];
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
    }
    case "enum": {
      const n = Number(readInt(b, 0, t));
      return Object.entries(t.values).find(([, x]) => x === n)?.[0] ?? n;
    }
    case "float":
      return t.size === 4 ? b.readFloatLE(0) : b.readDoubleLE(0);
    case "array": {
      if (t.name === "hex") return `hex:${b.toString("hex")}`;
      if (t.elem.kind === "int" && t.elem.size === 1) {
        if (t.count === 16 && (t.name === "ipv6" || ADDRESS_FIELD.test(field))) return formatIpv6(b);
        if (t.count === 4 && ADDRESS_FIELD.test(field)) return [...b.subarray(0, 4)].join(".");
        if (t.count === 6 && (t.name === "mac" || MAC_FIELD.test(field))) return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, "0")).join(":");
        if (t.elem.char) return b.toString("utf8", 0, b.indexOf(0) < 0 ? t.count : b.indexOf(0));
      }
      return Array.from({ length: t.count }, (_, i) => decodeTyped(b.subarray(i * t.elem.size, (i + 1) * t.elem.size), t.elem, field));
    }
    case "struct":
    case "union": {
      if (t.size === 16 && /in6_addr/.test(t.name)) return formatIpv6(b);
      if (t.size === 4 && /in_addr/.test(t.name)) return [...b.subarray(0, 4)].join(".");
      const out: Record<string, unknown> = {};
      // An LPM trie key with one address after prefixlen reads as the prefix: { saddr: "10.0.0.0/8" }.
      if (isLpmKey(t) && t.members.length === 2) {
        const m = t.members[1]!;
        const bits = b.readUInt32LE(0) - (m.bitOffset - 32);
        const addr = b.subarray(m.bitOffset / 8, m.bitOffset / 8 + m.type.size);
        if ((m.type.size === 4 || m.type.size === 16) && bits >= 0 && bits <= m.type.size * 8) {
          out[m.name] = `${m.type.size === 4 ? [...addr].join(".") : formatIpv6(addr)}/${bits}`;
          return out;
        }
      }
      for (const m of t.kind === "union" ? t.members.slice(0, 1) : t.members) {
        if (m.bitSize) {
          const first = Math.floor(m.bitOffset / 8);
          const last = Math.floor((m.bitOffset + m.bitSize - 1) / 8);
          let word = 0n;
          for (let i = last; i >= first; i--) word = (word << 8n) | BigInt(b[i]!);
          out[m.name] = Number((word >> BigInt(m.bitOffset - first * 8)) & ((1n << BigInt(m.bitSize)) - 1n));
        } else out[m.name] = decodeTyped(b.subarray(m.bitOffset / 8, m.bitOffset / 8 + m.type.size), m.type, m.name);
      }
      return out;
    }
  }
}

/** An integer that a decoder shows as a plain number: where it is in its value, and its type. */
export interface IntField {
  /** byte offset in the value */
  offset: number;
  size: 2 | 4 | 8;
  signed: boolean;
}

/**
 * The integer field at path ("dropped", "stats.bytes", "counts.3") of a value of type t, when
 * decodeTyped would show it as a plain number: a little-endian integer of 2, 4 or 8 bytes that is no
 * address, flag or character, reached through struct members and array elements (not bitfields or
 * unions). Undefined otherwise: such a field is read by decoding the whole value.
 */
export function intFieldAt(t: TypeDesc, path: string): IntField | undefined {
  let offset = 0;
  for (const part of path ? path.split(".") : []) {
    // (decodeTyped shows addresses and LPM keys as text)
    const special: boolean = t.kind === "struct" && (/in6?_addr/.test(t.name) || isLpmKey(t));
    if (t.kind === "struct" && !special) {
      const m = t.members.find((x) => x.name === part);
      if (!m || m.bitSize || m.bitOffset % 8) return undefined;
      offset += m.bitOffset / 8;
      t = m.type;
    } else if (t.kind === "array" && t.name !== "hex" && /^\d+$/.test(part) && Number(part) < t.count) {
      offset += Number(part) * t.elem.size;
      t = t.elem;
    } else return undefined;
  }
  if (t.kind !== "int" || t.bool || t.char || t.bigEndian || t.name === "ipv4" || (t.size !== 2 && t.size !== 4 && t.size !== 8)) return undefined;
  return { offset, size: t.size, signed: t.signed };
}

/** The integer field f (intFieldAt's) of a value's bytes, as decodeTyped would show it. */
export function readIntField(b: Buffer, f: IntField): number {
  return Number(readInt(b, f.offset, f));
}
