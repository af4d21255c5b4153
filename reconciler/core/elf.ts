// The parts of an ELF64 little-endian file that bpfops reads itself: section headers, strings, and
// where a function symbol sits in the file (for uprobes). Pure: bytes in, plain data out.

export interface Section {
  name: string;
  type: number;
  flags: bigint;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

/** The section headers, with their names. */
export function elfSections(b: Buffer): Section[] {
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const shstrndx = b.readUInt16LE(0x3e);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return { nameOff: b.readUInt32LE(o), type: b.readUInt32LE(o + 4), flags: b.readBigUInt64LE(o + 8), offset: Number(b.readBigUInt64LE(o + 24)), size: Number(b.readBigUInt64LE(o + 32)), link: b.readUInt32LE(o + 40), entsize: Number(b.readBigUInt64LE(o + 56)) };
  });
  const strtab = raw[shstrndx]!;
  return raw.map((s) => ({ ...s, name: cstring(b, strtab.offset + s.nameOff) }));
}

/** The NUL-terminated string at off. */
export function cstring(b: Buffer, off: number): string {
  const end = b.indexOf(0, off);
  return b.toString("utf8", off, end < 0 ? b.length : end);
}

/**
 * The file offset of a function symbol in an executable or shared object (what a uprobe is placed
 * at): its address in the symbol table (.symtab, else .dynsym), mapped through the loadable
 * segment that holds it. Null when the symbol is not there or not in a loaded segment.
 */
export function elfFunctionOffset(b: Buffer, symbol: string): number | null {
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) throw new TypeError("not a 64-bit little-endian ELF file");
  const sections = elfSections(b);
  let address: bigint | null = null;
  for (const type of [2 /* SHT_SYMTAB */, 11 /* SHT_DYNSYM */]) {
    for (const s of sections.filter((x) => x.type === type)) {
      const strtab = sections[s.link]!;
      for (let o = s.offset; o + 24 <= s.offset + s.size; o += s.entsize || 24) {
        const info = b[o + 4]!;
        const shndx = b.readUInt16LE(o + 6);
        // STT_FUNC (or STT_GNU_IFUNC), defined in a section
        if (((info & 0xf) !== 2 && (info & 0xf) !== 10) || shndx === 0) continue;
        if (cstring(b, strtab.offset + b.readUInt32LE(o)) === symbol) {
          address = b.readBigUInt64LE(o + 8);
          break;
        }
      }
      if (address !== null) break;
    }
    if (address !== null) break;
  }
  if (address === null) return null;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  for (let i = 0; i < b.readUInt16LE(0x38); i++) {
    const o = phoff + i * phentsize;
    if (b.readUInt32LE(o) !== 1 /* PT_LOAD */) continue;
    const offset = b.readBigUInt64LE(o + 8);
    const vaddr = b.readBigUInt64LE(o + 16);
    const filesz = b.readBigUInt64LE(o + 32);
    if (address >= vaddr && address < vaddr + filesz) return Number(address - vaddr + offset);
  }
  return null;
}
