// Reads an object file's programs, maps and globals (.rodata, .data, .bss) through libbpf without loading it
// (no privileges needed): the facts manifest validation checks programs, globals and bindings against.
import { ObjectFile } from "./object.ts";
import type { ObjectSummary } from "../core/object-summary.ts";
import { GLOBAL_SECTIONS } from "../core/btf.ts";

export function inspectObject(bytes: Buffer, name: string): ObjectSummary {
  // The pin root is only used at load, which never happens here.
  const o = ObjectFile.open(bytes, { pinRoot: "/sys/fs/bpf", name });
  try {
    return {
      programs: o.programs().map((p) => ({ name: p.name, section: p.section, type: p.type, expectedAttachType: p.expectedAttachType })),
      maps: o.maps().map((m) => ({ name: m.name, type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags, internal: m.internal, pinned: m.pinPath !== null })),
      globals: GLOBAL_SECTIONS.flatMap((section) => o.globals(section).map((g) => ({ ...g, section }))),
    };
  } finally {
    o.close();
  }
}
