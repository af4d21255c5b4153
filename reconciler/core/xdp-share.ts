// Several XDP programs on one interface (XDP takes one): ordered XDP Attachments become a Chain of
// bpfops's own, a dispatcher on the hook tail-calling its programs in their order from a
// prog-array. Pure: desired state in, desired state out, as buildDesired makes it.
import { mapTypeName } from "../../schemas/kernel-names.ts";
import { sha256, type DesiredAttachment, type DesiredChain, type DesiredMap, type DesiredProgram, type DesiredState, type MapDefinition } from "./desired.ts";
import type { ObjectFacts } from "./validate.ts";

/** The dispatcher's object, shipped with bpfops (bpf/xdp_dispatcher.bpf.c), as loaders name it. */
export const XDP_DISPATCHER_OBJECT = "bpfops:xdp_dispatcher.o";
/** What a program sharing an XDP hook has from bpfops_xdp.h: its slot, and the map of its hook's programs. */
export const XDP_SHARE_GLOBAL = "bpfops_xdp_slot";
export const XDP_SHARE_MAP = "bpfops_xdp_next";
export const XDP_SHARE_SLOTS = 8;

/** The groups of XDP Attachments that order ties together, each in its order (first runs first). */
export function xdpGroups(attachments: DesiredAttachment[]): DesiredAttachment[][] {
  const xdp = attachments.filter((a) => a.hook.type === "xdp");
  const byName = new Map(xdp.map((a) => [a.name, a]));
  // Union the Attachments order relates.
  const parent = new Map(xdp.map((a) => [a.name, a.name]));
  const find = (n: string): string => (parent.get(n) === n ? n : find(parent.get(n)!));
  for (const a of xdp) if (a.order && byName.has(a.order.attachment)) parent.set(find(a.name), find(a.order.attachment));
  const groups = new Map<string, DesiredAttachment[]>();
  for (const a of xdp) {
    const related = a.order || xdp.some((b) => b.order?.attachment === a.name);
    if (related) groups.set(find(a.name), [...(groups.get(find(a.name)) ?? []), a]);
  }
  return [...groups.values()].map(inOrder);
}

/** A group's Attachments in their order: each after the ones it goes after, before the ones it goes before; ties by name. */
function inOrder(group: DesiredAttachment[]): DesiredAttachment[] {
  // "a before b" is an edge a -> b; "a after b" is b -> a. Kahn's algorithm, smallest name first.
  const edges = new Map(group.map((a) => [a.name, new Set<string>()]));
  const indegree = new Map(group.map((a) => [a.name, 0]));
  for (const a of group) {
    if (!a.order || !edges.has(a.order.attachment)) continue;
    const [from, to] = a.order.position === "before" ? [a.name, a.order.attachment] : [a.order.attachment, a.name];
    if (!edges.get(from)!.has(to)) (edges.get(from)!.add(to), indegree.set(to, indegree.get(to)! + 1));
  }
  const out: DesiredAttachment[] = [];
  const ready = group.filter((a) => indegree.get(a.name) === 0).map((a) => a.name);
  while (ready.length) {
    ready.sort();
    const n = ready.shift()!;
    out.push(group.find((a) => a.name === n)!);
    for (const m of edges.get(n)!) {
      indegree.set(m, indegree.get(m)! - 1);
      if (indegree.get(m) === 0) ready.push(m);
    }
  }
  return out; // a cycle leaves members out; validation refuses cycles
}

function s32Hex(n: number): string {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b.toString("hex");
}

/**
 * Replaces each group of ordered XDP Attachments with a Chain: a prog-array Map and a dispatcher
 * Program (bpfops's, from `dispatcher`) named bpfops-xdp-<first Attachment>, the programs as its
 * stages in order, each told its slot (bpfops_xdp_slot) and bound to the prog-array
 * (bpfops_xdp_next). `digest` names a program version from its fields (buildDesired's).
 */
export function shareXdpHooks(state: DesiredState, dispatcher: Extract<ObjectFacts, { ok: true }> | undefined, digest: (p: Omit<DesiredProgram, "name" | "source" | "objectPath" | "pinnedMaps" | "digest">) => string): DesiredState {
  const groups = xdpGroups(state.attachments);
  if (!groups.length) return state;
  if (!dispatcher) throw new Error("shareXdpHooks: ordered XDP Attachments need the dispatcher's object facts");
  const maps = [...state.maps];
  const chains = [...state.chains];
  const programs = new Map(state.programs.map((p) => [p.name, p]));
  const grouped = new Set(groups.flat().map((a) => a.name));
  for (const group of groups) {
    const first = group[0]!;
    const name = `bpfops-xdp-${[...group].map((a) => a.name).sort()[0]}`;
    // The prog-array is named for the order: a new order is a new prog-array, filled beside the
    // old one, that the dispatcher switches to with one update (the chain is rebuilt), never a
    // rewrite slot by slot that a packet could cross halfway.
    const slotsMap = `${name}-${sha256(group.map((a) => a.program).join(",")).slice(0, 8)}`;
    const slots: MapDefinition = { type: "prog_array", keySize: 4, valueSize: 4, maxEntries: XDP_SHARE_SLOTS, flags: 0 };
    maps.push({ name: slotsMap, source: first.source, def: slots, onChange: "recreate", merge: "latest", entries: [], overwriteEntries: false, entryPolicy: "seed", prune: true } satisfies DesiredMap);
    const stats = dispatcher.summary.maps.find((m) => m.name === "xdp_chain_stats")!;
    const root = {
      objectDigest: dispatcher.digest,
      program: "xdp_dispatcher",
      type: "xdp",
      globals: {},
      maps: { xdp_chain: { bind: slotsMap, bindDef: slots }, xdp_chain_stats: { pin: true } },
    };
    programs.set(name, { name, source: first.source, objectPath: XDP_DISPATCHER_OBJECT, ...root, pinnedMaps: { xdp_chain_stats: { type: mapTypeName(stats.type), keySize: stats.keySize, valueSize: stats.valueSize, maxEntries: stats.maxEntries, flags: stats.flags } }, digest: digest(root) });
    // Each program learns its slot and the hook's prog-array: a new place is a new version.
    group.forEach((a, slot) => {
      const p = programs.get(a.program.split("/")[0]!)!;
      const { name: _n, source: _s, objectPath: _o, pinnedMaps: _m, digest: _d, ...fields } = p;
      const shared = { ...fields, globals: { ...p.globals, [XDP_SHARE_GLOBAL]: s32Hex(slot) }, maps: { ...p.maps, [XDP_SHARE_MAP]: { bind: slotsMap, bindDef: slots } } };
      programs.set(p.name, { ...p, ...shared, digest: digest(shared) });
    });
    const hook = first.hook as Extract<DesiredChain["hook"], { type: "xdp" }>;
    chains.push({ name, source: first.source, root: name, progArray: slotsMap, stages: group.map((a) => a.program), hook, takeover: group.some((a) => a.takeover) });
  }
  const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);
  return { maps: maps.sort(byName), programs: [...programs.values()].sort(byName), attachments: state.attachments.filter((a) => !grouped.has(a.name)), chains: chains.sort(byName) };
}
