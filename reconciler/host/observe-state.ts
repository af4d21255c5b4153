// Observes the live state a plan is made against: the pins under the bpffs root that bpfops's
// provenance vouches for (maps, program versions with the maps they are bound to, object maps,
// links), pins it did not make, the interfaces each hook names, and what holds every hook, whoever
// attached it. Reads only; a pin caught mid-rename by a concurrent reconcile is skipped.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { openIfPresent, openPinnedLink, openPinnedMap, openPinnedProgram, pinKindIfPresent } from "../kernel/pins.ts";
import { legacyPathOf, readLegacyAttachment } from "./legacy-hooks.ts";
import { MapHandle, u32Key } from "../kernel/handles.ts";
import { interfaceIndex, listInterfaces, listLinks, queryCgroupHook, queryMapHook, queryNetnsHook, queryTcxHook, queryXdpHook } from "../kernel/observe.ts";
import { probeFeature, type FeatureName } from "../kernel/features.ts";
import { MapType, mapTypeName } from "../../schemas/kernel-names.ts";
import { describeHook, hookKey, isProgramPart, layout, PIN_SUFFIX, type ConcreteHook } from "../core/layout.ts";
import { netnsKey, observedHooksOf, ONLINE_CPUS, type ObservedHook, type ObservedLink, type ObservedMap, type ObservedObjectMap, type ObservedProgram, type ObservedState, type UnownedPin } from "../core/observed.ts";
import type { DesiredState } from "../core/desired.ts";
import type { Hook } from "../../schemas/manifest.ts";
import type { CgroupAttachName } from "../kernel/attach.ts";
import { isUnwrittenArrayValue, uprobeOffset } from "./kernel-steps.ts";
import { idsOwnedByOtherRoots, readProvenance, type Provenance } from "./provenance.ts";
import { entryKind, kernelAddedFlags, perCpuStride } from "../core/map-types.ts";

/** Whether a named network namespace exists (the hooks name them as `ip netns` does). */
const netnsExists = (name: string) => existsSync(`/var/run/netns/${name}`);

function dirEntries(dir: string): string[] {
  try {
    // Names with "~" are pins being replaced: a live reconcile's, or a crashed one's that the next apply recovers.
    return readdirSync(dir).filter((n) => !n.includes("~")).sort();
  } catch {
    return [];
  }
}


class Ownership {
  readonly unowned: UnownedPin[] = [];
  constructor(
    private readonly root: string,
    private readonly records: Map<string, Provenance>,
  ) {}
  /** The provenance of an owned pin, or null (and the pin is reported as not ours). */
  of(pin: string, kind: UnownedPin["kind"], name: string): Provenance | null {
    const p = this.records.get(relative(this.root, pin));
    if (!p) this.unowned.push({ pin, kind, name });
    return p ?? null;
  }
}

/**
 * A per-CPU value as a manifest writes it: one value when every CPU holds the same, else CPU by
 * CPU at the kernel's stride, without the trailing CPUs that hold zero.
 */
function sameOnEveryCpu(m: MapHandle, v: Buffer): Buffer {
  if (!m.perCpu) return v;
  const cpus = m.splitPerCpu(v);
  if (cpus.every((c) => c.equals(cpus[0]!))) return cpus[0]!;
  const stride = perCpuStride(m.valueSize);
  let end = cpus.length;
  while (end > 1 && cpus[end - 1]!.every((x) => x === 0)) end--;
  return v.subarray(0, end * stride);
}

function observeMaps(root: string, desired: DesiredState, own: Ownership): ObservedMap[] {
  const out: ObservedMap[] = [];
  for (const name of dirEntries(layout.mapsDir(root))) {
    const pin = layout.map(root, name);
    const prov = own.of(pin, "Map", name);
    if (!prov) continue;
    const m = openIfPresent(() => openPinnedMap(pin));
    if (!m) continue;
    try {
      const i = m.info();
      const entries = new Map<string, string | null>();
      const want = desired.maps.find((d) => d.name === name);
      const kind = entryKind(mapTypeName(i.type));
      if (kind === "pushed" || kind === "none") {
        // values only, or the datapath's: nothing to compare with git
      } else if (want?.entryPolicy === "exact" && !m.perCpu) {
        // exact owns every entry: read them all (one batch lookup where the kernel has it); a
        // key the dump did not return is absent.
        const typeName = mapTypeName(i.type);
        for (const e of m.entries()) if (!isUnwrittenArrayValue(typeName, e.value)) entries.set(e.key.toString("hex"), e.value.toString("hex"));
      } else {
        for (const e of want?.entries ?? []) {
          if (e.key.length / 2 !== m.keySize) continue;
          const v = m.lookup(Buffer.from(e.key, "hex"));
          entries.set(e.key, !v || isUnwrittenArrayValue(mapTypeName(i.type), v) ? null : sameOnEveryCpu(m, v).toString("hex"));
        }
      }
      const om: ObservedMap = { name, pin, id: i.id, ...(prov.id ? { recordedId: prov.id } : {}), ...(prov.keep ? { keep: true } : {}), ...(prov.recordType ? { recordType: prov.recordType } : {}), def: { type: mapTypeName(i.type), keySize: i.keySize, valueSize: i.valueSize, maxEntries: i.maxEntries, flags: i.flags & ~kernelAddedFlags(mapTypeName(i.type), i.valueSize) }, entries };
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

function observePrograms(root: string, own: Ownership): ObservedProgram[] {
  const out: ObservedProgram[] = [];
  for (const name of dirEntries(layout.programsDir(root))) {
    const entries = dirEntries(layout.programDir(root, name));
    for (const digest of entries) {
      // A collection's parts (<digest>@<program>, <digest>#<map>) belong to their version.
      if (isProgramPart(digest)) continue;
      const pin = layout.program(root, name, digest);
      const prov = own.of(pin, "Program", name);
      if (!prov) continue;
      const p = openIfPresent(() => openPinnedProgram(pin));
      if (!p) continue;
      try {
        const i = p.info();
        const parts = entries.filter((e) => isProgramPart(e, digest) && !e.endsWith(PIN_SUFFIX.new)).map((e) => join(layout.programDir(root, name), e));
        const members: Record<string, number> = {};
        const mapIds = new Set(i.mapIds);
        for (const part of parts) {
          if (!basename(part).includes("@") || !own.of(part, "Program", name)) continue;
          const m = openIfPresent(() => openPinnedProgram(part));
          if (!m) continue;
          members[basename(part).split("@")[1]!] = m.id;
          for (const id of m.info().mapIds) mapIds.add(id);
          m.close();
        }
        out.push({ name, digest, pin, id: i.id, ...(prov.id ? { recordedId: prov.id } : {}), tag: i.tag, mapIds: withInnerMaps(mapIds), ...(prov.spec ? { spec: prov.spec } : {}), ...(parts.length ? { members, parts } : {}) });
      } finally {
        p.close();
      }
    }
  }
  return out;
}

function observeObjectMaps(root: string, own: Ownership): ObservedObjectMap[] {
  const out: ObservedObjectMap[] = [];
  const dir = `${root}/objmaps`;
  for (const program of dirEntries(dir)) {
    for (const map of dirEntries(join(dir, program))) {
      const pin = join(dir, program, map);
      if (!own.of(pin, "Program", program)) continue;
      const m = openIfPresent(() => openPinnedMap(pin));
      if (!m) continue;
      const i = m.info();
      out.push({ program, map, pin, id: m.id, def: { type: mapTypeName(i.type), keySize: i.keySize, valueSize: i.valueSize, maxEntries: i.maxEntries, flags: i.flags & ~kernelAddedFlags(mapTypeName(i.type), i.valueSize) } });
      m.close();
    }
  }
  return out;
}

function observeLinks(root: string, own: Ownership): ObservedLink[] {
  const out: ObservedLink[] = [];
  for (const [owner, dir] of [["Attachment", layout.linksDir(root)], ["Chain", layout.chainsDir(root)]] as const) {
    for (const name of dirEntries(dir)) {
      for (const key of dirEntries(join(dir, name))) {
        const pin = join(dir, name, key);
        const prov = own.of(pin, owner, name);
        if (!prov) continue;
        if (pinKindIfPresent(pin) === "prog") {
          // An attachment made through a legacy path: the program pinned at the link's path.
          const l = readLegacyAttachment(pin, key);
          if (l?.path) out.push({ owner, name, hookKey: key, pin, id: l.progId, ...(prov.id ? { recordedId: prov.id } : {}), progId: l.progId, attached: l.attached, legacy: l.path });
          continue;
        }
        const l = openIfPresent(() => openPinnedLink(pin));
        if (!l) continue;
        try {
          const i = l.info();
          // XDP and tcx links keep existing when their device goes; their ifindex becomes 0.
          const attached = !(i.typeName === "xdp" || i.typeName === "tcx") || (i.ifindex ?? 0) !== 0;
          out.push({ owner, name, hookKey: key, pin, id: i.id, ...(prov.id ? { recordedId: prov.id } : {}), progId: i.progId, attached });
        } finally {
          l.close();
        }
      }
    }
  }
  return out;
}

/** Pins under the root outside bpfops's layout folders (or its state map): not ours, reported. */
function strayPins(root: string): UnownedPin[] {
  const known = new Set(["maps", "programs", "objmaps", "links", "chains", "state"]);
  return dirEntries(root)
    .filter((n) => !known.has(n))
    .map((n) => ({ pin: join(root, n), kind: "Other" as const, name: n }));
}

/** Hook types bpfops cannot attach yet, with the probe that says whether the kernel could. */
const UNSUPPORTED_HOOKS: Partial<Record<ConcreteHook["type"], FeatureName>> = { fentry: "fentry", fexit: "fentry", lsm: "lsm", kprobe: "kprobe", kretprobe: "kprobe" };

function observeHook(h: ConcreteHook, interfaces: Record<string, string[]>, root: string): ObservedHook {
  const feature = UNSUPPORTED_HOOKS[h.type];
  if (feature) {
    const s = probeFeature(feature);
    // These attach paths are not implemented yet, whatever the probe says; the probe gives the kernel's reason when there is one.
    return { hook: h, present: true, progIds: [], unsupported: true, error: s.status === "supported" ? `${h.type} attach is not implemented by bpfops yet` : `${h.type} is not supported on this kernel: ${s.detail} (probe ${feature})` };
  }
  try {
    switch (h.type) {
      case "xdp":
      case "tcx": {
        if (h.netns && !netnsExists(h.netns)) return { hook: h, present: false, progIds: [], error: `network namespace ${h.netns} does not exist (will retry)` };
        if (!(interfaces[netnsKey(h.netns)] ?? []).includes(h.ifname)) return { hook: h, present: false, progIds: [] };
        if (h.type === "xdp") {
          const q = queryXdpHook({ ifname: h.ifname, netns: h.netns });
          return { hook: h, present: true, progIds: q.progId ? [q.progId] : [] };
        }
        const q = queryTcxHook({ ifname: h.ifname, netns: h.netns, direction: h.direction });
        return { hook: h, present: true, progIds: q.progIds, linkIds: q.linkIds };
      }
      case "cgroup":
        if (!existsSync(h.path)) return { hook: h, present: false, progIds: [] };
        return { hook: h, present: true, progIds: queryCgroupHook(h.path, h.attachType as CgroupAttachName).progIds };
      case "netfilter":
      case "sk_lookup":
      case "flow_dissector":
        if (h.netns && !netnsExists(h.netns)) return { hook: h, present: false, progIds: [], error: `network namespace ${h.netns} does not exist (will retry)` };
        // Netfilter links stack with no order to read; the namespace's own hooks answer a query.
        return { hook: h, present: true, progIds: h.type === "netfilter" ? [] : queryNetnsHook(h.netns, h.type).progIds };
      case "uprobe":
      case "uretprobe":
        if (!existsSync(h.binary)) return { hook: h, present: false, progIds: [], error: `${describeHook(h)}: ${h.binary} not found (will retry)` };
        uprobeOffset(h);
        return { hook: h, present: true, progIds: [] };
      case "sk_msg":
      case "sk_skb": {
        // The Map may be made by this very plan: until then nothing can be attached to it.
        const map = openIfPresent(() => openPinnedMap(layout.map(root, h.map)));
        if (!map) return { hook: h, present: true, progIds: [] };
        try {
          return { hook: h, present: true, progIds: queryMapHook(map, h.attachType).progIds };
        } finally {
          map.close();
        }
      }
      default:
        return { hook: h, present: true, progIds: [] };
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "EPERM") return { hook: h, present: false, progIds: [], error: `reading ${hookKey(h)} needs CAP_SYS_ADMIN (setns) and CAP_NET_ADMIN: ${(e as Error).message}` };
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
    out[key] = w.glob ? listInterfaces(w.netns) : [...w.names].filter((name) => interfaceIndex(name, w.netns) !== null);
  }
  // perf_event hooks without CPUs of their own sample every online CPU.
  if (hooks.some((h) => h.type === "perf_event" && !h.cpus)) out[ONLINE_CPUS] = onlineCpus().map(String);
  return out;
}

/**
 * The foreign programs on exclusive (XDP) hooks: the link holding each, matched by the hook
 * (link type, ifindex in the hook's namespace, and the program the hook reports), never by program
 * id alone; and which of them another bpfops root owns.
 */
function identifyForeign(hooks: Record<string, ObservedHook>, ownedIds: Set<number>, root: string): void {
  const xdp = Object.values(hooks).filter((h) => h.hook.type === "xdp" && h.progIds.some((id) => !ownedIds.has(id)));
  if (!xdp.length) return;
  const links = listLinks().filter((l) => l.typeName === "xdp");
  const others = idsOwnedByOtherRoots(root);
  for (const h of xdp) {
    if (h.hook.type !== "xdp") continue;
    const ifindex = interfaceIndex(h.hook.ifname, h.hook.netns);
    h.foreignLinks = {};
    h.otherRoots = {};
    for (const id of h.progIds.filter((x) => !ownedIds.has(x))) {
      const link = links.find((l) => l.progId === id && l.ifindex === ifindex);
      if (link) h.foreignLinks[id] = link.id;
      const other = others.get(id);
      if (other) h.otherRoots[id] = other;
    }
  }
}

export function observeState(root: string, desired: DesiredState): ObservedState {
  const own = new Ownership(root, readProvenance(root));
  const hooks = [...desired.attachments.map((a) => a.hook), ...desired.chains.map((c) => c.hook)];
  const interfaces = presentInterfaces(hooks);
  const observedHooks: Record<string, ObservedHook> = {};
  for (const h of hooks) {
    for (const c of observedHooksOf(h, interfaces)) {
      if (observedHooks[hookKey(c)]) continue;
      const o = observeHook(c, interfaces, root);
      const legacy = legacyPathOf(c);
      observedHooks[hookKey(c)] = legacy ? { ...o, legacy } : o;
    }
  }
  const maps = observeMaps(root, desired, own);
  const programs = observePrograms(root, own);
  const objectMaps = observeObjectMaps(root, own);
  const links = observeLinks(root, own);
  identifyForeign(observedHooks, new Set(programs.map((p) => p.id)), root);
  const warnings: string[] = [];
  for (const x of [...desired.attachments.map((a) => ({ what: `Attachment/${a.name}`, hook: a.hook })), ...desired.chains.map((c) => ({ what: `Chain/${c.name}`, hook: c.hook }))]) {
    if ((x.hook.type === "xdp" || x.hook.type === "tcx") && x.hook.netns && x.hook.interfaces.some((i) => /[*?]/.test(i)) && !netnsExists(x.hook.netns)) {
      warnings.push(`${x.what}: network namespace ${x.hook.netns} does not exist, so ${x.hook.interfaces.filter((i) => /[*?]/.test(i)).join(", ")} matches no interface`);
    }
  }
  return { root, maps, programs, objectMaps, links, hooks: observedHooks, interfaces, unowned: [...own.unowned, ...strayPins(root)], warnings };
}

/** The online CPUs, from /sys/devices/system/cpu/online ("0-3,5"). */
function onlineCpus(): number[] {
  const out: number[] = [];
  for (const range of readFileSync("/sys/devices/system/cpu/online", "utf8").trim().split(",")) {
    const [a, b = a] = range.split("-").map(Number) as [number, number?];
    for (let c = a; c <= b!; c++) out.push(c);
  }
  return out;
}

/**
 * The maps a version uses: its programs' own, and the maps its map-in-maps hold (a pinned object
 * map it reaches only through a map-in-map is bound all the same). Sorted ids.
 */
function withInnerMaps(ids: Set<number>): number[] {
  for (const id of [...ids]) {
    const m = openIfPresent(() => MapHandle.fromId(id));
    if (!m) continue;
    try {
      if (m.info().type === MapType.array_of_maps || m.info().type === MapType.hash_of_maps) for (const e of m.entries()) ids.add(e.value.readUInt32LE(0));
    } finally {
      m.close();
    }
  }
  return [...ids].sort((a, b) => a - b);
}
