// Finishes what a killed apply left half done, before anything is observed: pins with a "~"
// suffix are replacements caught mid-switch. Each is resolved toward a state the next plan can
// read: a map switch is put back (or completed), a make-before-break link takes the hook (as a
// legacy replace's program pin does), and a program version or a replacement map that was never
// committed is dropped.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pinExists, pinnedId, unpin } from "../kernel/pins.ts";
import { renameSync } from "node:fs";
import { layout, PIN_SUFFIX } from "../core/layout.ts";
import { ProvenanceStore } from "./provenance.ts";

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Returns what it did, for the log. */
export function recoverInterrupted(root: string): string[] {
  const done: string[] = [];
  const prov = new ProvenanceStore(root);
  try {
    const maps = layout.mapsDir(root);
    for (const n of entries(maps)) {
      const p = join(maps, n);
      if (n.endsWith(PIN_SUFFIX.prev)) {
        const final = p.slice(0, -PIN_SUFFIX.prev.length);
        // Killed between the two renames of a switch: the old map goes back, with its data.
        if (!pinExists(final)) {
          renameSync(p, final);
          done.push(`restored ${final}`);
        }
        // Killed after the switch: hooks may still run programs bound to the old map (a chain's
        // root tail-calls into the old prog-array, which empties once its last pin goes), so it
        // stays until this run's commit has moved them; its prune removes it.
      } else if (n.endsWith(PIN_SUFFIX.next)) {
        unpin(p); // prepared, never switched in
        done.push(`removed ${p}`);
      }
    }
    for (const dir of [layout.linksDir(root), layout.chainsDir(root)]) {
      for (const owner of entries(dir)) {
        for (const n of entries(join(dir, owner))) {
          // A make-before-break link ("~new") is attached and running a pinned version: it takes the
          // hook, the old one goes. A legacy replace ("~next", a program) happened in the kernel: its
          // program's pin was to follow by rename. Either way the pin is completed.
          const suffix = [PIN_SUFFIX.new, PIN_SUFFIX.next].find((x) => n.endsWith(x));
          if (!suffix) continue;
          const p = join(dir, owner, n);
          const final = p.slice(0, -suffix.length);
          const id = pinnedId(p);
          renameSync(p, final);
          prov.record(final, { id });
          done.push(`completed ${final}`);
        }
      }
    }
    for (const name of entries(layout.programsDir(root))) {
      for (const n of entries(layout.programDir(root, name))) {
        if (!n.endsWith(PIN_SUFFIX.new)) continue;
        unpin(join(layout.programDir(root, name), n)); // loaded, never committed
        done.push(`removed ${join(layout.programDir(root, name), n)}`);
      }
    }
  } finally {
    prov.close();
  }
  return done;
}
