// Attaching programs to hooks as links: XDP and tcx on an interface inside a network namespace,
// cgroup hooks by path, tracepoints, raw tracepoints and tracing (fentry/fexit) programs.
import { native } from "./native.ts";
import { kernelCall } from "./errors.ts";
import { LinkHandle, type ProgramHandle } from "./handles.ts";
import { AttachType, XdpFlags, type AttachTypeName } from "../../schemas/kernel-names.ts";
import type { NetnsRef } from "../../native/native.d.ts";

export type XdpMode = "auto" | "generic" | "driver" | "offload";
export type TcxDirection = "ingress" | "egress";

export interface InterfaceHook {
  ifname: string;
  /** netns name (under /var/run/netns), path, fd, or null for the caller's namespace. */
  netns?: NetnsRef;
}

const XDP_MODE_FLAGS: Record<XdpMode, number> = {
  auto: 0,
  generic: XdpFlags.skbMode,
  driver: XdpFlags.drvMode,
  offload: XdpFlags.hwMode,
};

function where(h: InterfaceHook): string {
  return h.netns === undefined || h.netns === null ? h.ifname : `${h.ifname}@${String(h.netns)}`;
}

/** Attaches an XDP program to an interface as a link (fails if a program is already attached). */
export function attachXdpLink(program: ProgramHandle, hook: InterfaceHook & { mode?: XdpMode }): LinkHandle & { ifindex: number } {
  const r = kernelCall(() => native.attachXdp(program.fd, hook.ifname, hook.netns, XDP_MODE_FLAGS[hook.mode ?? "auto"]));
  return Object.assign(LinkHandle.fromFd(r.fd, `xdp ${where(hook)}`), { ifindex: r.ifindex });
}

/**
 * Attaches a tc program to an interface's tcx ingress or egress: at the end of its chain, or
 * before or after another program, or another link (which keeps its place across updates).
 */
export function attachTcxLink(program: ProgramHandle, hook: InterfaceHook & { direction: TcxDirection; before?: ProgramHandle | LinkHandle; after?: ProgramHandle | LinkHandle }): LinkHandle & { ifindex: number } {
  const anchor = hook.before ?? hook.after;
  const order = anchor ? { [hook.before ? "before" : "after"]: anchor.fd, link: anchor instanceof LinkHandle } : undefined;
  const r = kernelCall(() => native.attachTcx(program.fd, hook.ifname, hook.netns, hook.direction, order));
  return Object.assign(LinkHandle.fromFd(r.fd, `tcx ${hook.direction} ${where(hook)}`), { ifindex: r.ifindex });
}

export type CgroupAttachName = Extract<AttachTypeName, `cgroup_${string}`>;

/** Attaches a cgroup program (skb, sock_addr, sockops...) to the cgroup v2 directory at path. */
export function attachCgroupLink(program: ProgramHandle, cgroupPath: string, attachType: CgroupAttachName): LinkHandle {
  const fd = kernelCall(() => native.attachCgroup(program.fd, cgroupPath, AttachType[attachType]));
  return LinkHandle.fromFd(fd, `cgroup ${attachType} ${cgroupPath}`);
}

/** Attaches a tracepoint program ("category/name"); tracefs must be mounted at tracefsRoot. */
export function attachTracepointLink(program: ProgramHandle, tracepoint: string, tracefsRoot = "/sys/kernel/tracing"): LinkHandle {
  const [category, name, ...rest] = tracepoint.split("/");
  if (!category || !name || rest.length) throw new TypeError(`tracepoint must be "category/name", got "${tracepoint}"`);
  const fd = kernelCall(() => native.attachTracepoint(program.fd, category, name, tracefsRoot));
  return LinkHandle.fromFd(fd, `tracepoint ${tracepoint}`);
}

export function attachRawTracepointLink(program: ProgramHandle, name: string): LinkHandle {
  const fd = kernelCall(() => native.attachRawTracepoint(program.fd, name));
  return LinkHandle.fromFd(fd, `raw_tracepoint ${name}`);
}

/**
 * Returns once no CPU still runs a program that a link ran before an update (one RCU grace
 * period): what such a program wrote is then all there is to read.
 */
export function waitForReplacedPrograms(): void {
  kernelCall(() => native.rcuGracePeriod());
}

/** fentry/fexit/tp_btf: the target was fixed when the program was loaded. */
export function attachTracingLink(program: ProgramHandle, attachType: "trace_fentry" | "trace_fexit" | "trace_raw_tp"): LinkHandle {
  const fd = kernelCall(() => native.attachTracing(program.fd, AttachType[attachType]));
  return LinkHandle.fromFd(fd, `${attachType} ${program.name}`);
}
