// The parts of an ELF64 little-endian object that bpfops reads itself: its section headers and
// NUL-terminated strings. Pure: bytes in, plain data out.

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
