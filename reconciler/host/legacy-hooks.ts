// Hooks attached through the paths of kernels without BPF links for them (TC cls_bpf, netlink XDP,
// cgroup BPF_PROG_ATTACH): which hooks take them on this host, and bpfops's record of such an
// attachment, which has no link to pin: the program itself, pinned at the link's path.
import { createHash } from "node:crypto";
import { basename, dirname } from "node:path";
import { probeFeature } from "../kernel/features.ts";
import { attachCgroupProg, attachTcFilter, attachXdpNetlink, detachCgroupProg, detachTcFilter, detachXdpNetlink, queryTcFilter, type TcFilter } from "../kernel/legacy-attach.ts";
import { queryCgroupHook, queryXdpHook } from "../kernel/observe.ts";
import type { CgroupAttachName, XdpMode } from "../kernel/attach.ts";
import type { ProgramHandle } from "../kernel/handles.ts";
import { parseHookKey, type ConcreteHook } from "../core/layout.ts";
import { openIfPresent, openPinnedProgram } from "../kernel/pins.ts";
import type { LegacyPath } from "../core/observed.ts";

export { LEGACY_PATH_TEXT, type LegacyPath } from "../core/observed.ts";

/**
 * The legacy path a hook takes on this host: when the probe of its link type says the kernel has
 * none (an unknown answer, without privileges, keeps the link path). Null: a BPF link.
 */
export function legacyPathOf(h: ConcreteHook): LegacyPath | null {
  const lacks = (f: "tcx" | "xdpLink" | "cgroupLinkUpdate") => probeFeature(f).status === "unsupported";
  if (h.type === "tcx") return lacks("tcx") ? "tc" : null;
  if (h.type === "xdp") return lacks("xdpLink") ? "xdp-netlink" : null;
  if (h.type === "cgroup") return lacks("cgroupLinkUpdate") ? "cgroup-attach" : null;
  return null;
}

/** The legacy path of an attachment recorded as a program pinned at a link's path. */
export function recordedLegacyPath(h: ConcreteHook): LegacyPath {
  if (h.type === "tcx") return "tc";
  if (h.type === "xdp") return "xdp-netlink";
  if (h.type === "cgroup") return "cgroup-attach";
  throw new Error(`a ${h.type} hook has no legacy attach path`);
}

// bpfops's cls_bpf filters: one handle, and a priority per Attachment (from its name, above the
// low priorities people give by hand), so that its filters on one hook neither collide nor move.
const TC_HANDLE = 0xb9f;
export function tcFilterOf(h: Extract<ConcreteHook, { type: "tcx" }>, linkPin: string): TcFilter {
  const attachment = basename(dirname(linkPin)).replace(/~.*$/, "");
  const priority = 0x100 + (createHash("sha256").update(attachment).digest().readUInt16BE(0) % 0xfe00);
  return { ifname: h.ifname, netns: h.netns, direction: h.direction, handle: TC_HANDLE, priority };
}

/** The mode an XDP program is attached in there now, to detach or replace it in the same mode. */
function xdpMode(h: Extract<ConcreteHook, { type: "xdp" }>): XdpMode {
  const q = queryXdpHook({ ifname: h.ifname, netns: h.netns });
  return q.mode === "generic" ? "generic" : q.mode === "driver" ? "driver" : h.mode;
}

/** Attaches through the legacy path (onto its place: the hook, the filter's priority). */
export function legacyAttach(h: ConcreteHook, linkPin: string, program: ProgramHandle): void {
  if (h.type === "tcx") attachTcFilter(program, tcFilterOf(h, linkPin));
  else if (h.type === "xdp") attachXdpNetlink(program, { ifname: h.ifname, netns: h.netns, mode: h.mode });
  else if (h.type === "cgroup") attachCgroupProg(program, h.path, h.attachType as CgroupAttachName);
  else throw new Error(`a ${h.type} hook has no legacy attach path`);
}

/**
 * Replaces `expected` with `next` in one kernel request: a cls_bpf filter in place (NLM_F_REPLACE
 * on its handle and priority), netlink XDP with XDP_FLAGS_REPLACE, a cgroup program with
 * BPF_F_REPLACE. The last two fail if `expected` is no longer there; for tc it is checked first.
 */
export function legacyReplace(h: ConcreteHook, linkPin: string, next: ProgramHandle, expected: ProgramHandle): void {
  if (h.type === "tcx") {
    const f = tcFilterOf(h, linkPin);
    const now = queryTcFilter(f);
    if (now !== expected.id) throw Object.assign(new Error(`tc filter ${f.direction} ${f.ifname} priority ${f.priority} runs prog id ${now}, not ${expected.id}`), { code: "EPERM" });
    attachTcFilter(next, f, true);
  } else if (h.type === "xdp") attachXdpNetlink(next, { ifname: h.ifname, netns: h.netns, mode: xdpMode(h) }, expected);
  else if (h.type === "cgroup") attachCgroupProg(next, h.path, h.attachType as CgroupAttachName, expected);
  else throw new Error(`a ${h.type} hook has no legacy attach path`);
}

/** Detaches `current` from its place. */
export function legacyDetach(h: ConcreteHook, linkPin: string, current: ProgramHandle): void {
  if (h.type === "tcx") detachTcFilter(tcFilterOf(h, linkPin));
  else if (h.type === "xdp") detachXdpNetlink({ ifname: h.ifname, netns: h.netns, mode: xdpMode(h) }, current);
  else if (h.type === "cgroup") detachCgroupProg(current, h.path, h.attachType as CgroupAttachName);
  else throw new Error(`a ${h.type} hook has no legacy attach path`);
}

/** Whether program id `progId` runs at bpfops's place on the hook (its filter, the XDP hook, the cgroup). */
export function legacyAttached(h: ConcreteHook, linkPin: string, progId: number): boolean {
  if (h.type === "tcx") return queryTcFilter(tcFilterOf(h, linkPin)) === progId;
  if (h.type === "xdp") return queryXdpHook({ ifname: h.ifname, netns: h.netns }).progId === progId;
  if (h.type === "cgroup") return queryCgroupHook(h.path, h.attachType as CgroupAttachName).progIds.includes(progId);
  return false;
}

/**
 * A legacy attachment as bpffs records it: the program pinned at the link's path (key: the hook's
 * key, its pin name), its path, and whether bpfops's place on the hook still runs that program
 * (not when its interface, namespace or cgroup is gone). Its hook and path are null when the key
 * is hashed (too long to name its hook); null when the pin went meanwhile.
 */
export function readLegacyAttachment(pin: string, key: string): { hook: ConcreteHook | null; path: LegacyPath | null; progId: number; attached: boolean } | null {
  const prog = openIfPresent(() => openPinnedProgram(pin));
  if (!prog) return null;
  try {
    const hook = parseHookKey(key);
    let attached = false;
    try {
      attached = !!hook && legacyAttached(hook, pin, prog.id);
    } catch {
      // its interface, namespace or cgroup is gone: not attached
    }
    return { hook, path: hook && recordedLegacyPath(hook), progId: prog.id, attached };
  } finally {
    prog.close();
  }
}
