// The identity of an eBPF object: a digest of what the kernel will run (instructions, relocations,
// maps and data, BTF types, CO-RE relocations), not of debug and line information. A source edit
// that only moves lines or touches comments compiles to another file with the same identity, so a
// rebuild of it is "unchanged", not a swap. Pure: parses the ELF and BTF bytes; falls back to the
// digest of the whole file when they cannot be parsed.
import { createHash, type Hash } from "node:crypto";
import { cstring, elfSections, type Section } from "./elf.ts";
import { btfSections } from "./btf.ts";

const SHT_SYMTAB = 2;
const SHT_REL = 9;
const SHT_NOBITS = 8;
const STT_FILE = 4;

/** Sections that carry no behaviour: debug info, the symbol and string tables (folded in below), line info. */
function skipped(name: string): boolean {
  return name === "" || name.startsWith(".debug") || name.startsWith(".rel.debug") || name === ".BTF" || name === ".BTF.ext" || name.startsWith(".rel.BTF") || name === ".llvm_addrsig" || name === ".strtab" || name === ".symtab" || name === ".shstrtab";
}

interface Symbol {
  name: string;
  section: string;
  value: bigint;
  size: bigint;
  info: number;
}

function symbols(b: Buffer, secs: Section[]): Symbol[] {
  const symtab = secs.find((s) => s.type === SHT_SYMTAB);
  if (!symtab) return [];
  const strtab = secs[symtab.link]!;
  const out: Symbol[] = [];
  for (let o = symtab.offset; o + 24 <= symtab.offset + symtab.size; o += 24) {
    const shndx = b.readUInt16LE(o + 6);
    out.push({ name: cstring(b, strtab.offset + b.readUInt32LE(o)), info: b[o + 4]!, section: secs[shndx]?.name ?? `#${shndx}`, value: b.readBigUInt64LE(o + 8), size: b.readBigUInt64LE(o + 16) });
  }
  return out;
}

/** BTF types, with every name offset replaced by the name (line-info strings move offsets around). */
function hashBtf(h: Hash, btf: Buffer): Buffer {
  const { types, strings } = btfSections(btf);
  const name = (off: number) => cstring(strings, off);
  let o = 0;
  while (o < types.length) {
    const info = types.readUInt32LE(o + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    h.update(`T${name(types.readUInt32LE(o))}:${info}:${types.readUInt32LE(o + 8)}`);
    o += 12;
    // count records of stride words each; a name offset at position 0 of a record when named
    const words = (count: number, stride: number, named: boolean) => {
      for (let i = 0; i < count * stride; i++) h.update(named && i % stride === 0 ? `:${name(types.readUInt32LE(o + 4 * i))}` : `:${types.readUInt32LE(o + 4 * i)}`);
      o += 4 * count * stride;
    };
    switch (kind) {
      case 1: // INT
      case 14: // VAR
      case 17: // DECL_TAG
        words(1, 1, false);
        break;
      case 3: // ARRAY
        words(1, 3, false);
        break;
      case 4: // STRUCT
      case 5: // UNION
        words(vlen, 3, true);
        break;
      case 6: // ENUM
      case 13: // FUNC_PROTO
        words(vlen, 2, true);
        break;
      case 15: // DATASEC
        words(vlen, 3, false);
        break;
      case 19: // ENUM64
        words(vlen, 3, true);
        break;
      default: // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG: nothing more
        break;
    }
  }
  return strings;
}

/** .BTF.ext: function info and CO-RE relocations count; line info does not. */
function hashBtfExt(h: Hash, ext: Buffer, strings: Buffer): void {
  if (ext.readUInt16LE(0) !== 0xeb9f) throw new Error("not BTF.ext");
  const hdrLen = ext.readUInt32LE(4);
  const part = (off: number, len: number, what: string, nameAt: number | null) => {
    if (!len) return;
    let o = hdrLen + off;
    const end = o + len;
    const recSize = ext.readUInt32LE(o);
    o += 4;
    while (o < end) {
      const sec = cstring(strings, ext.readUInt32LE(o));
      const n = ext.readUInt32LE(o + 4);
      o += 8;
      for (let i = 0; i < n; i++, o += recSize) {
        const rec = Array.from({ length: recSize / 4 }, (_, w) => (w === nameAt ? cstring(strings, ext.readUInt32LE(o + 4 * w)) : ext.readUInt32LE(o + 4 * w)));
        h.update(`${what}${sec}:${rec.join(":")}`);
      }
    }
  };
  part(ext.readUInt32LE(8), ext.readUInt32LE(12), "F", null);
  if (hdrLen >= 32) part(ext.readUInt32LE(24), ext.readUInt32LE(28), "C", 2); // access string of a CO-RE relocation
}

/** The digest of what the kernel will run from this object (64 hex). */
export function objectIdentity(bytes: Buffer): string {
  try {
    const h = createHash("sha256").update("bpfops-object-identity-v1");
    const secs = elfSections(bytes);
    const syms = symbols(bytes, secs);
    for (const s of [...secs].filter((x) => !skipped(x.name)).sort((a, b) => a.name.localeCompare(b.name))) {
      h.update(`S${s.name}:${s.type}:${s.flags}:${s.size}`);
      if (s.type === SHT_NOBITS) continue;
      if (s.type === SHT_REL) {
        // A relocation names a symbol by index: hash the symbol itself, which survives renumbering.
        for (let o = s.offset; o + 16 <= s.offset + s.size; o += 16) {
          const info = bytes.readBigUInt64LE(o + 8);
          const sym = syms[Number(info >> 32n)];
          h.update(`R${bytes.readBigUInt64LE(o)}:${info & 0xffffffffn}:${sym ? `${sym.name}@${sym.section}+${sym.value}` : "?"}`);
        }
        continue;
      }
      h.update(bytes.subarray(s.offset, s.offset + s.size));
    }
    for (const s of syms.filter((x) => (x.info & 0xf) !== STT_FILE && x.name && !skipped(x.section)).map((x) => `${x.name}@${x.section}+${x.value}/${x.size}/${x.info}`).sort()) h.update(`Y${s}`);
    const btf = secs.find((s) => s.name === ".BTF");
    if (btf) {
      const strings = hashBtf(h, bytes.subarray(btf.offset, btf.offset + btf.size));
      const ext = secs.find((s) => s.name === ".BTF.ext");
      if (ext) hashBtfExt(h, bytes.subarray(ext.offset, ext.offset + ext.size), strings);
    }
    return h.digest("hex");
  } catch {
    return createHash("sha256").update(bytes).digest("hex");
  }
}
