// Attaching programs to hooks as links: XDP and tcx on an interface inside a network namespace,
// cgroup hooks by path, tracepoints, raw tracepoints, tracing, netfilter, netns, sockmap, uprobes.
import { native } from "./native.ts";
import { kernelCall } from "./errors.ts";
import { LinkHandle, type MapHandle, type ProgramHandle } from "./handles.ts";
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

export type NetfilterFamily = "ipv4" | "ipv6";
export type NetfilterHookName = "prerouting" | "input" | "forward" | "output" | "postrouting";
// NFPROTO_* and NF_INET_* numbers.
const NF_FAMILY: Record<NetfilterFamily, number> = { ipv4: 2, ipv6: 10 };
const NF_HOOK: Record<NetfilterHookName, number> = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4 };

/** Attaches a netfilter program to a hook of a family, at a priority, in a network namespace. */
export function attachNetfilterLink(program: ProgramHandle, hook: { netns?: NetnsRef; family: NetfilterFamily; hook: NetfilterHookName; priority: number; defrag?: boolean }): LinkHandle {
  const fd = kernelCall(() => native.attachNetfilter(program.fd, hook.netns, NF_FAMILY[hook.family], NF_HOOK[hook.hook], hook.priority, hook.defrag ?? false));
  return LinkHandle.fromFd(fd, `netfilter ${hook.family} ${hook.hook} priority ${hook.priority}`);
}

/** Attaches an sk_lookup or flow_dissector program to a network namespace (null: the caller's). */
export function attachNetnsLink(program: ProgramHandle, netns: NetnsRef | undefined, attachType: "sk_lookup" | "flow_dissector"): LinkHandle {
  const fd = kernelCall(() => native.attachNetns(program.fd, netns, AttachType[attachType]));
  return LinkHandle.fromFd(fd, `${attachType}${netns ? ` in netns ${String(netns)}` : ""}`);
}

export type SockmapAttachName = "sk_msg_verdict" | "sk_skb_stream_verdict" | "sk_skb_stream_parser" | "sk_skb_verdict";

/** Attaches an sk_msg or sk_skb program to a sockmap or sockhash as a link. */
export function attachSockmapLink(program: ProgramHandle, map: MapHandle, attachType: SockmapAttachName): LinkHandle {
  const fd = kernelCall(() => native.attachMap(program.fd, map.fd, AttachType[attachType]));
  return LinkHandle.fromFd(fd, `${attachType} ${map.name}`);
}

/** Attaches a uprobe (or uretprobe) program at a file offset of a binary, for one pid or all. */
export function attachUprobeLink(program: ProgramHandle, probe: { binary: string; offset: number; retprobe: boolean; pid?: number }): LinkHandle {
  const fd = kernelCall(() => native.attachUprobe(program.fd, probe.binary, probe.offset, probe.retprobe, probe.pid ?? -1));
  return LinkHandle.fromFd(fd, `${probe.retprobe ? "uretprobe" : "uprobe"} ${probe.binary}+0x${probe.offset.toString(16)}`);
}

export type PerfEventName = "cpu-clock" | "task-clock" | "cpu-cycles" | "instructions";
// (PERF_TYPE_*, config) of each event: software clocks, and two hardware counters.
const PERF_EVENTS: Record<PerfEventName, [number, number]> = { "cpu-clock": [1, 0], "task-clock": [1, 1], "cpu-cycles": [0, 0], instructions: [0, 1] };

/** Attaches a perf_event program to a sampling event on one CPU, at a frequency (Hz). */
export function attachPerfEventLink(program: ProgramHandle, event: { name: PerfEventName; frequency: number; cpu: number }): LinkHandle {
  const [type, config] = PERF_EVENTS[event.name];
  const fd = kernelCall(() => native.attachPerfEvent(program.fd, type, config, event.frequency, event.cpu));
  return LinkHandle.fromFd(fd, `perf_event ${event.name} cpu ${event.cpu}`);
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
