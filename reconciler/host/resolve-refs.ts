// Entries that name things of this host rather than bytes: a devmap entry's interface (in a named
// network namespace) becomes its ifindex there, read from the kernel before planning. What does
// not resolve stays a reference, and the plan blocks that map with the reason.
import { interfaceIndex } from "../kernel/observe.ts";
import { REF } from "../core/validate-maps.ts";
import type { DesiredState } from "../core/desired.ts";

/** "@ifindex:<netns>/<ifname>/<valueSize>" -> netns, ifname and the value's size. */
export function parseIfindexRef(v: string): { netns: string | null; ifname: string; size: number } {
  const [netns, ifname, size] = v.slice(REF.ifindex.length).split("/") as [string, string, string];
  return { netns: netns || null, ifname, size: Number(size) };
}

/** The desired state with every interface an entry names replaced by its ifindex where it exists. */
export function resolveHostRefs(desired: DesiredState): DesiredState {
  if (!desired.maps.some((d) => d.entries.some((e) => e.value.startsWith(REF.ifindex)))) return desired;
  const maps = desired.maps.map((d) => ({
    ...d,
    entries: d.entries.map((e) => {
      if (!e.value.startsWith(REF.ifindex)) return e;
      const r = parseIfindexRef(e.value);
      const index = interfaceIndex(r.ifname, r.netns);
      if (index === null) return e;
      const v = Buffer.alloc(r.size);
      v.writeUInt32LE(index);
      // The kernel resolves the ifindex in the namespace of whoever writes it: written from there.
      return { key: e.key, value: v.toString("hex"), ...(r.netns ? { netns: r.netns } : {}) };
    }),
  }));
  return { ...desired, maps };
}
