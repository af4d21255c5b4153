// The observed state of one host as plain data: what bpfops owns under its bpffs root (pins that
// its provenance records vouch for) and what is attached to every hook the desired state names.
import type { MapDefinition, ProgramSpecSummary } from "./desired.ts";
import { concreteHooks, type ConcreteHook } from "./layout.ts";
import type { Hook } from "../../schemas/manifest.ts";

export interface ObservedMap {
  name: string;
  pin: string;
  id: number;
  /** the map id bpfops recorded when it pinned this map; differs from id when the pin was replaced */
  recordedId?: number;
  def: MapDefinition;
  /** applied with prune: false: never pruned when its manifest goes */
  keep?: boolean;
  /** the record struct recorded for a map of records */
  recordType?: string;
  /**
   * current values (hex) of the keys the desired state gives initial entries for (null: absent);
   * for a map under entryPolicy exact, every entry the map holds besides
   */
  entries: Map<string, string | null>;
  /** prog_array maps: program id in each slot (0: empty) */
  slots?: number[];
}

export interface ObservedProgram {
  name: string;
  /** first 16 hex of the content digest, from the pin name */
  digest: string;
  pin: string;
  id: number;
  recordedId?: number;
  tag: string;
  /** the maps the version uses: its programs' (prog info map_ids, a collection's members too) and those its map-in-maps hold */
  mapIds: number[];
  /** what the version was made from, as recorded when it was pinned */
  spec?: ProgramSpecSummary;
  /** a collection's version: the prog id of each other program, pinned beside the primary */
  members?: Record<string, number>;
  /** a collection's version: the pins beside the primary (its other programs, its own maps) */
  parts?: string[];
}

/** An object map a program pinned under objmaps/<program>/<map>. */
export interface ObservedObjectMap {
  program: string;
  map: string;
  pin: string;
  id: number;
  def: MapDefinition;
}

/** An attach path of kernels without BPF links for a hook. */
export type LegacyPath = "tc" | "xdp-netlink" | "cgroup-attach";

/** What each legacy path is, for plans and logs. */
export const LEGACY_PATH_TEXT: Record<LegacyPath, string> = {
  tc: "TC clsact + cls_bpf (netlink)",
  "xdp-netlink": "netlink XDP",
  "cgroup-attach": "BPF_PROG_ATTACH",
};

export interface ObservedLink {
  owner: "Attachment" | "Chain";
  name: string;
  hookKey: string;
  pin: string;
  id: number;
  recordedId?: number;
  progId: number;
  /** false when the link outlived its hook (the interface went away) */
  attached: boolean;
  /** attached through a legacy path: no link; id and progId are the program's, pinned at the link's path */
  legacy?: LegacyPath;
}

export interface ObservedHook {
  hook: ConcreteHook;
  /** whether the interface (or cgroup) exists */
  present: boolean;
  /** every program attached there, ours or not (XDP: at most one), in the order they run */
  progIds: number[];
  /** tcx: the link of each of progIds (0 for one attached without a link) */
  linkIds?: number[];
  /** the link holding each foreign program on this hook, found by the hook (type, netns, ifindex) */
  foreignLinks?: Record<number, number>;
  /** foreign programs that another bpfops root owns: program id -> that root */
  otherRoots?: Record<number, string>;
  /** why the hook could not be read or cannot be used here, when it cannot */
  error?: string;
  /** the hook type cannot be attached on this kernel (a feature probe said so) */
  unsupported?: boolean;
  /** this kernel has no BPF link for the hook: a new attachment takes this path */
  legacy?: LegacyPath;
}

/** A pin under the root that bpfops's provenance does not vouch for: never pruned or overwritten. */
export interface UnownedPin {
  pin: string;
  kind: "Map" | "Program" | "Attachment" | "Chain" | "Other";
  name: string;
}

export interface ObservedState {
  root: string;
  maps: ObservedMap[];
  programs: ObservedProgram[];
  objectMaps: ObservedObjectMap[];
  links: ObservedLink[];
  hooks: Record<string, ObservedHook>;
  /** interfaces present per network namespace ("host" for the agent's own): those the hooks name, or all where a hook uses a glob */
  interfaces: Record<string, string[]>;
  unowned: UnownedPin[];
  /** what the operator should know that does not stop the plan (a glob over a namespace that does not exist) */
  warnings: string[];
}

export const netnsKey = (netns: string | null | undefined): string => netns ?? "host";

/** The concrete hooks of a manifest hook, given the interfaces observed in its namespace. */
/** Where observation puts the host's online CPUs among the interfaces it found (perf_event hooks expand over them). */
export const ONLINE_CPUS = "#cpus";

export function observedHooksOf(hook: Hook, interfaces: Record<string, string[]>): ConcreteHook[] {
  const present = hook.type === "xdp" || hook.type === "tcx" ? (interfaces[netnsKey(hook.netns)] ?? []) : hook.type === "perf_event" ? (interfaces[ONLINE_CPUS] ?? []) : [];
  return concreteHooks(hook, present);
}
