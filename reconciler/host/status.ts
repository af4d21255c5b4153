// What is applied, read from the kernel alone: every map, program version and link bpfops owns
// under its bpffs root, with kernel ids, run counts, whether each link still enforces on a hook
// that exists, and the provenance recorded beside them; pins bpfops did not make are listed apart.
import { relative } from "node:path";
import { readProvenance, type Provenance } from "./provenance.ts";
import { listPinPaths, openIfPresent, openPinnedLink, openPinnedMap, openPinnedProgram, pinKindIfPresent } from "../kernel/pins.ts";
import { LEGACY_PATH_TEXT, readLegacyAttachment } from "./legacy-hooks.ts";

export interface StatusEntry {
  kind: "Map" | "Program" | "Attachment" | "Chain" | "ObjectMap" | "Unowned";
  name: string;
  pin: string;
  id: number;
  /** links: attached to a hook that exists (an XDP or tcx link whose interface went away is not) */
  enforcing?: boolean;
  detail: Record<string, string | number | boolean | null>;
  provenance?: Provenance;
}


/** A hook's pin name, or its long form from provenance where the name is a hash (a long cgroup path). */
function hookName(key: string, recorded: string | undefined): string {
  return key.includes("@#") && recorded ? recorded : key;
}

export function readStatus(root: string, opts: { statsOn?: boolean } = {}): StatusEntry[] {
  const prov = readProvenance(root);
  const out: StatusEntry[] = [];
  for (const path of listPinPaths(root)) {
    const rel = relative(root, path);
    if (rel === "state" || rel.includes("~")) continue; // the state map itself; pins mid-replacement
    const [top, a, b] = rel.split("/");
    const record = prov.get(rel);
    const base = { pin: path, ...(record ? { provenance: record } : {}) };
    if (!record) {
      const holds = pinKindIfPresent(path);
      if (holds) out.push({ ...base, kind: "Unowned", name: rel, id: 0, detail: { holds, note: "not made by bpfops: never pruned or overwritten" } });
      continue;
    }
    if (top === "maps" && a) {
      const m = openIfPresent(() => openPinnedMap(path));
      if (!m) continue;
      const i = m.info();
      out.push({ ...base, kind: "Map", name: a, id: i.id, detail: { type: i.typeName, keySize: i.keySize, valueSize: i.valueSize, maxEntries: i.maxEntries, entries: [...m.keys()].length } });
      m.close();
    } else if (top === "objmaps" && a && b) {
      const m = openIfPresent(() => openPinnedMap(path));
      if (!m) continue;
      const i = m.info();
      out.push({ ...base, kind: "ObjectMap", name: `${a}/${b}`, id: i.id, detail: { type: i.typeName, maxEntries: i.maxEntries } });
      m.close();
    } else if (top === "programs" && a && b) {
      const h = openIfPresent(() => openPinnedProgram(path));
      if (!h) continue;
      const i = h.info();
      // Without BPF stats the kernel counts nothing: a zero would claim the program never ran.
      const counted = opts.statsOn || i.runCount > 0 || i.runTimeNs > 0;
      out.push({ ...base, kind: "Program", name: a, id: i.id, detail: { digest: b, type: i.typeName, tag: i.tag, kernelName: i.name, verifiedInstructions: i.verifiedInstructions, runCount: counted ? i.runCount : null, runTimeNs: counted ? i.runTimeNs : null } });
      h.close();
    } else if (top === "links" && a && b && pinKindIfPresent(path) === "prog") {
      // A legacy attachment (no BPF link on this kernel): the program bpfops attached, pinned at the link's path.
      const l = readLegacyAttachment(path, b);
      if (!l) continue;
      out.push({ ...base, kind: "Attachment", name: a, id: l.progId, enforcing: l.attached, detail: { hook: hookName(decodeURIComponent(b), record.hook), linkType: l.path ? `none: ${LEGACY_PATH_TEXT[l.path]}` : "none", progId: l.progId } });
    } else if ((top === "links" || top === "chains") && a && b) {
      const l = openIfPresent(() => openPinnedLink(path));
      if (!l) continue;
      const i = l.info();
      const enforcing = !(i.typeName === "xdp" || i.typeName === "tcx") || (i.ifindex ?? 0) !== 0;
      out.push({ ...base, kind: top === "links" ? "Attachment" : "Chain", name: a, id: i.id, enforcing, detail: { hook: hookName(decodeURIComponent(b), record.hook), linkType: i.typeName, progId: i.progId, ...(i.ifindex !== undefined ? { ifindex: i.ifindex } : {}) } });
      l.close();
    }
  }
  return out;
}
