// What the manifests need to know about an eBPF object file, as plain data: its programs, maps and
// globals (read by the kernel layer without loading), plus a pure check that bytes are an eBPF ELF.

export interface ObjectSummary {
  programs: Array<{ name: string; section: string; type: number; expectedAttachType: number }>;
  maps: Array<{ name: string; type: number; keySize: number; valueSize: number; maxEntries: number; flags: number; internal: boolean; pinned: boolean }>;
  /** global variables a manifest may set: `const volatile` ones in .rodata, and those of .data and .bss */
  globals: Array<{ name: string; offset: number; size: number; section: string }>;
}

const EM_BPF = 247;

/** null when bytes look like a 64-bit little-endian eBPF ELF relocatable object, else why not. */
export function whyNotBpfElf(bytes: Uint8Array): string | null {
  if (bytes.length < 64) return "too short to be an ELF file";
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) return "not an ELF file";
  if (bytes[4] !== 2 || bytes[5] !== 1) return "not a 64-bit little-endian ELF file";
  const machine = bytes[18]! | (bytes[19]! << 8);
  if (machine !== EM_BPF) return `an ELF file for machine ${machine}, not eBPF (${EM_BPF})`;
  return null;
}
