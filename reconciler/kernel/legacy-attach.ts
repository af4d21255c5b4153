// The attach paths of kernels that lack BPF links for a hook: TC clsact + cls_bpf through netlink,
// netlink XDP, and cgroup BPF_PROG_ATTACH; each replaces a program in one atomic kernel request.
import { native } from "./native.ts";
import { kernelCall } from "./errors.ts";
import type { ProgramHandle } from "./handles.ts";
import type { InterfaceHook, TcxDirection, XdpMode, CgroupAttachName } from "./attach.ts";
import { AttachType, XdpFlags } from "../../schemas/kernel-names.ts";

/** One cls_bpf filter: an interface's clsact ingress or egress, at a handle and priority. */
export interface TcFilter extends InterfaceHook {
  direction: TcxDirection;
  handle: number;
  priority: number;
}

/**
 * Attaches a program as a direct-action cls_bpf filter (making the clsact qdisc when needed); with
 * replace, the filter at that handle and priority is replaced in one request (NLM_F_REPLACE), so
 * every packet meets the old program or the new one. Returns the program id the kernel reports.
 */
export function attachTcFilter(program: ProgramHandle, f: TcFilter, replace = false): number {
  return kernelCall(() => native.tcAttach(program.fd, f.ifname, f.netns, f.direction, f.handle, f.priority, replace));
}

export function detachTcFilter(f: TcFilter): void {
  kernelCall(() => native.tcDetach(f.ifname, f.netns, f.direction, f.handle, f.priority));
}

/** The program id of the filter at that handle and priority; 0 when there is none. */
export function queryTcFilter(f: TcFilter): number {
  return kernelCall(() => native.tcQuery(f.ifname, f.netns, f.direction, f.handle, f.priority));
}

const XDP_MODE: Record<XdpMode, number> = { auto: 0, generic: XdpFlags.skbMode, driver: XdpFlags.drvMode, offload: XdpFlags.hwMode };

/**
 * Attaches an XDP program through netlink: onto an empty hook, or, with `expected`, in place of
 * that program only (XDP_FLAGS_REPLACE: the kernel compares and swaps).
 */
export function attachXdpNetlink(program: ProgramHandle, hook: InterfaceHook & { mode?: XdpMode }, expected?: ProgramHandle): void {
  kernelCall(() => native.xdpAttachNetlink(program.fd, hook.ifname, hook.netns, XDP_MODE[hook.mode ?? "auto"], expected?.fd ?? -1));
}

/** Detaches the netlink XDP program, if it is still `expected`. */
export function detachXdpNetlink(hook: InterfaceHook & { mode?: XdpMode }, expected: ProgramHandle): void {
  kernelCall(() => native.xdpDetachNetlink(hook.ifname, hook.netns, XDP_MODE[hook.mode ?? "auto"], expected.fd));
}

/**
 * Attaches a cgroup program with BPF_PROG_ATTACH (BPF_F_ALLOW_MULTI, so programs stack as links
 * do); with `replace`, in place of that program (BPF_F_REPLACE).
 */
export function attachCgroupProg(program: ProgramHandle, cgroupPath: string, attachType: CgroupAttachName, replace?: ProgramHandle): void {
  kernelCall(() => native.cgroupProgAttach(program.fd, cgroupPath, AttachType[attachType], replace?.fd ?? -1));
}

export function detachCgroupProg(program: ProgramHandle, cgroupPath: string, attachType: CgroupAttachName): void {
  kernelCall(() => native.cgroupProgDetach(program.fd, cgroupPath, AttachType[attachType]));
}
