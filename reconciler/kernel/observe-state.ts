// Observes the live state a plan is made against: the pins under the bpffs root (maps, program
// versions, links) with their kernel info, the interfaces of each namespace the desired state
// names, and what is attached at each of its hooks, whoever attached it. Reads only.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { openPinnedLink, openPinnedMap, openPinnedProgram } from "./pins.ts";
import { native } from "./native.ts";
import { u32Key } from "./handles.ts";
import { fromNative } from "./errors.ts";
import { queryCgroupHook, queryTcxHook, queryXdpHook } from "./observe.ts";
import { mapTypeName } from "./constants.ts";
import { hookKey, layout, type ConcreteHook } from "../core/layout.ts";
import { netnsKey, observedHooksOf, type ObservedHook, type ObservedLink, type ObservedMap, type ObservedProgram, type ObservedState } from "../core/observed.ts";
import type { DesiredState } from "../core/desired.ts";
import type { Hook } from "../../schemas/manifest.ts";
import type { CgroupAttachName } from "./attach.ts";
import { isUnwrittenArrayValue } from "./apply-steps.ts";

function dirEntries(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Interfaces of a namespace; [] when the namespace does not exist. */
export function listInterfaces(netns: string | null): string[] {
  try {
    return native.interfaces(netns).sort();
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return [];
    throw fromNative(e);
  }
}

function observeMaps(root: string, desired: DesiredState): ObservedMap[] {
  const out: ObservedMap[] = [];
  for (const name of dirEntries(layout.mapsDir(root))) {
    const m = openPinnedMap(layout.map(root, name));
    try {
      const i = m.info();
      const entries: Record<string, string | null> = {};
      for (const e of desired.maps.find((d) => d.name === name)?.entries ?? []) {
        if (e.key.length / 2 !== m.keySize || m.perCpu) continue;
        const v = m.lookup(Buffer.from(e.key, "hex"));
        entries[e.key] = !v || isUnwrittenArrayValue(mapTypeName(i.type), v) ? null : v.toString("hex");
      }
      const om: ObservedMap = { name, id: i.id, def: { type: mapTypeName(i.type), keySize: i.keySize, valueSize: i.valueSize, maxEntries: i.maxEntries, flags: i.flags }, entries };
      if (om.def.type === "prog_array") {
        // Looking a prog_array slot up from user space returns the program's id.
        om.slots = Array.from({ length: i.maxEntries }, (_, s) => m.lookup(u32Key(s))?.readUInt32LE(0) ?? 0);
      }
      out.push(om);
    } finally {
      m.close();
    }
  }
  return out;
}

function observePrograms(root: string): ObservedProgram[] {
  const out: ObservedProgram[] = [];
  for (const name of dirEntries(layout.programsDir(root))) {
    for (const digest of dirEntries(layout.programDir(root, name))) {
      const p = openPinnedProgram(layout.program(root, name, digest));
      try {
        const i = p.info();
        out.push({ name, digest, id: i.id, tag: i.tag });
      } finally {
        p.close();
      }
    }
  }
  return out;
}

function observeLinks(root: string): ObservedLink[] {
  const out: ObservedLink[] = [];
  for (const [owner, dir] of [["Attachment", layout.linksDir(root)], ["Chain", layout.chainsDir(root)]] as const) {
    for (const name of dirEntries(dir)) {
      for (const key of dirEntries(join(dir, name))) {
        const l = openPinnedLink(join(dir, name, key));
        try {
          const i = l.info();
          // XDP and tcx links keep existing when their device goes; their ifindex becomes 0.
          const attached = !(i.typeName === "xdp" || i.typeName === "tcx") || (i.ifindex ?? 0) !== 0;
          out.push({ owner, name, hookKey: key, id: i.id, progId: i.progId, attached });
        } finally {
          l.close();
        }
      }
    }
  }
  return out;
}

function observeHook(h: ConcreteHook, interfaces: Record<string, string[]>): ObservedHook {
  try {
    switch (h.type) {
      case "xdp": {
        if (!(interfaces[netnsKey(h.netns)] ?? []).includes(h.ifname)) return { hook: h, present: false, progIds: [] };
        const q = queryXdpHook({ ifname: h.ifname, netns: h.netns });
        return { hook: h, present: true, progIds: q.progId ? [q.progId] : [] };
      }
      case "tcx": {
        if (!(interfaces[netnsKey(h.netns)] ?? []).includes(h.ifname)) return { hook: h, present: false, progIds: [] };
        return { hook: h, present: true, progIds: queryTcxHook({ ifname: h.ifname, netns: h.netns, direction: h.direction }).progIds };
      }
      case "cgroup":
        if (!existsSync(h.path)) return { hook: h, present: false, progIds: [] };
        return { hook: h, present: true, progIds: queryCgroupHook(h.path, h.attachType as CgroupAttachName).progIds };
      default:
        return { hook: h, present: true, progIds: [] };
    }
  } catch (e) {
    return { hook: h, present: false, progIds: [], error: (e as Error).message };
  }
}

/**
 * The interfaces present in each namespace the hooks name. A namespace whose hooks only name
 * interfaces exactly is asked about those names alone; a netlink dump of every link (slow with
 * thousands of interfaces) is made only where a glob needs it.
 */
function presentInterfaces(hooks: Hook[]): Record<string, string[]> {
  const wanted = new Map<string, { names: Set<string>; glob: boolean; netns: string | null }>();
  for (const h of hooks) {
    if (h.type !== "xdp" && h.type !== "tcx") continue;
    const key = netnsKey(h.netns);
    const w = wanted.get(key) ?? { names: new Set<string>(), glob: false, netns: h.netns ?? null };
    for (const i of h.interfaces) {
      if (/[*?]/.test(i)) w.glob = true;
      else w.names.add(i);
    }
    wanted.set(key, w);
  }
  const out: Record<string, string[]> = {};
  for (const [key, w] of wanted) {
    if (w.glob) {
      out[key] = listInterfaces(w.netns);
      continue;
    }
    out[key] = [...w.names].filter((name) => {
      try {
        native.ifindex(name, w.netns);
        return true;
      } catch {
        return false; // no such interface, or no such namespace
      }
    });
  }
  return out;
}

export function observeState(root: string, desired: DesiredState): ObservedState {
  const hooks = [...desired.attachments.map((a) => a.hook), ...desired.chains.map((c) => c.hook)];
  const interfaces = presentInterfaces(hooks);
  const observedHooks: Record<string, ObservedHook> = {};
  for (const h of hooks) {
    for (const c of observedHooksOf(h, interfaces)) observedHooks[hookKey(c)] ??= observeHook(c, interfaces);
  }
  return { root, maps: observeMaps(root, desired), programs: observePrograms(root), links: observeLinks(root), hooks: observedHooks, interfaces };
}
