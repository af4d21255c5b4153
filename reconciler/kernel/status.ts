// What is applied, read from the kernel alone: every map, program version and link bpfops owns
// under its bpffs root, with kernel ids, run counts and the provenance recorded beside them.
import { readProvenance, type Provenance } from "./provenance.ts";
import { listPins, openPinnedLink, openPinnedMap, openPinnedProgram } from "./pins.ts";
import { relative } from "node:path";

export interface StatusEntry {
  kind: "Map" | "Program" | "Attachment" | "Chain" | "ObjectMap";
  name: string;
  pin: string;
  id: number;
  detail: Record<string, string | number | boolean>;
  provenance?: Provenance;
}

export function readStatus(root: string): StatusEntry[] {
  const prov = readProvenance(root);
  const out: StatusEntry[] = [];
  for (const p of listPins(root)) {
    const rel = relative(root, p.path);
    const [top, a, b] = rel.split("/");
    const base = { pin: p.path, ...(prov.get(rel) ? { provenance: prov.get(rel)! } : {}) };
    if (top === "maps" && a) {
      const m = openPinnedMap(p.path);
      const i = m.info();
      out.push({ ...base, kind: "Map", name: a, id: i.id, detail: { type: i.typeName, keySize: i.keySize, valueSize: i.valueSize, maxEntries: i.maxEntries, entries: [...m.keys()].length } });
      m.close();
    } else if (top === "objmaps" && a && b) {
      const m = openPinnedMap(p.path);
      const i = m.info();
      out.push({ ...base, kind: "ObjectMap", name: `${a}/${b}`, id: i.id, detail: { type: i.typeName, maxEntries: i.maxEntries } });
      m.close();
    } else if (top === "programs" && a && b) {
      const h = openPinnedProgram(p.path);
      const i = h.info();
      out.push({ ...base, kind: "Program", name: a, id: i.id, detail: { digest: b, type: i.typeName, tag: i.tag, kernelName: i.name, verifiedInstructions: i.verifiedInstructions, runCount: i.runCount, runTimeNs: i.runTimeNs } });
      h.close();
    } else if ((top === "links" || top === "chains") && a && b) {
      const l = openPinnedLink(p.path);
      const i = l.info();
      out.push({ ...base, kind: top === "links" ? "Attachment" : "Chain", name: a, id: i.id, detail: { hook: decodeURIComponent(b), linkType: i.typeName, progId: i.progId, ...(i.ifindex !== undefined ? { ifindex: i.ifindex } : {}) } });
      l.close();
    }
  }
  return out;
}
