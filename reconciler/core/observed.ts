// The observed state of one host as plain data: what bpfops owns under its bpffs root (from pins)
// and what is attached to every hook the desired state names (including programs of other tools).
import type { MapDefinition } from "./desired.ts";
import { concreteHooks, type ConcreteHook } from "./layout.ts";
import type { Hook } from "../../schemas/manifest.ts";

export interface ObservedMap {
  name: string;
  id: number;
  def: MapDefinition;
  /** current values (hex) of the keys the desired state gives initial entries for; null: absent */
  entries: Record<string, string | null>;
  /** prog_array maps: program id in each slot (0: empty) */
  slots?: number[];
}

export interface ObservedProgram {
  name: string;
  /** first 16 hex of the content digest, from the pin name */
  digest: string;
  id: number;
  tag: string;
}

export interface ObservedLink {
  owner: "Attachment" | "Chain";
  name: string;
  hookKey: string;
  id: number;
  progId: number;
  /** false when the link outlived its hook (the interface went away) */
  attached: boolean;
}

export interface ObservedHook {
  hook: ConcreteHook;
  /** whether the interface (or cgroup) exists */
  present: boolean;
  /** every program attached there, ours or not (XDP: at most one) */
  progIds: number[];
  /** why the hook could not be read, when it could not */
  error?: string;
}

export interface ObservedState {
  root: string;
  maps: ObservedMap[];
  programs: ObservedProgram[];
  links: ObservedLink[];
  hooks: Record<string, ObservedHook>;
  /** interfaces present per network namespace ("host" for the agent's own): those the hooks name, or all where a hook uses a glob */
  interfaces: Record<string, string[]>;
}

export const netnsKey = (netns: string | null | undefined): string => netns ?? "host";

/** The concrete hooks of a manifest hook, given the interfaces observed in its namespace. */
export function observedHooksOf(hook: Hook, interfaces: Record<string, string[]>): ConcreteHook[] {
  const present = hook.type === "xdp" || hook.type === "tcx" ? (interfaces[netnsKey(hook.netns)] ?? []) : [];
  return concreteHooks(hook, present);
}
