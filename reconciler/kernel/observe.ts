// Observation of the live kernel: every program, map and link with its info, and what is
// attached to one hook (XDP, tcx, cgroup) in one network namespace.
import { native } from "./native.ts";
import { fromNative, kernelCall } from "./errors.ts";
import { OwnedFd } from "./fd.ts";
import { AttachType, linkTypeName, mapTypeName, progTypeName } from "../../schemas/kernel-names.ts";
import type { CgroupAttachName, InterfaceHook, TcxDirection } from "./attach.ts";
import type { ProgramInfo, MapInfo, LinkInfo, MapHandle } from "./handles.ts";
import type { NativeProgQuery, NativeXdpQuery, NetnsRef } from "../../native/native.d.ts";

/** Every program loaded in the kernel (all namespaces: ids are global). */
export function listPrograms(): ProgramInfo[] {
  return kernelCall(() => native.listPrograms()).map((p) => ({ ...p, typeName: progTypeName(p.type) }));
}
export function listMaps(): MapInfo[] {
  return kernelCall(() => native.listMaps()).map((m) => ({ ...m, typeName: mapTypeName(m.type) }));
}
/** Every link; an ifindex in link info does not say which namespace it belongs to. */
export function listLinks(): LinkInfo[] {
  return kernelCall(() => native.listLinks()).map((l) => ({ ...l, typeName: linkTypeName(l.type) }));
}

/** The XDP program on an interface (netlink), whoever attached it and however. progId 0: none. */
export function queryXdpHook(hook: InterfaceHook): NativeXdpQuery {
  return kernelCall(() => native.queryXdp(hook.ifname, hook.netns));
}
/** The tcx chain of an interface's ingress or egress, in order, with link ids (0: not a link). */
export function queryTcxHook(hook: InterfaceHook & { direction: TcxDirection }): NativeProgQuery {
  return kernelCall(() => native.queryTcx(hook.ifname, hook.netns, hook.direction));
}
/** The programs on a network namespace's sk_lookup or flow_dissector hook. */
export function queryNetnsHook(netns: NetnsRef | undefined, attachType: "sk_lookup" | "flow_dissector"): NativeProgQuery {
  return kernelCall(() => native.queryNetns(netns, AttachType[attachType]));
}

/** The programs attached to a sockmap or sockhash as its verdict or parser. */
export function queryMapHook(map: MapHandle, attachType: "sk_msg_verdict" | "sk_skb_stream_verdict" | "sk_skb_stream_parser" | "sk_skb_verdict"): NativeProgQuery {
  return kernelCall(() => native.queryMap(map.fd, AttachType[attachType]));
}

export function queryCgroupHook(cgroupPath: string, attachType: CgroupAttachName): NativeProgQuery {
  return kernelCall(() => native.queryCgroup(cgroupPath, AttachType[attachType]));
}

/** Ids of every program, map and link: a cheap fingerprint of kernel state for "changed nothing" checks. */
export function kernelIds(): { programs: number[]; maps: number[]; links: number[] } {
  return {
    programs: listPrograms().map((p) => p.id),
    maps: listMaps().map((m) => m.id),
    links: listLinks().map((l) => l.id),
  };
}

/**
 * Turns on the kernel's per-program run count and run time (BPF_ENABLE_STATS) for as long as the
 * returned handle stays open; they cost a little per run, so they are off unless asked for.
 */
export function enableRunTimeStats(): OwnedFd {
  return new OwnedFd(kernelCall(() => native.enableStats()), "bpf run-time stats");
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

/** The interface's index in its namespace, or null when the interface or the namespace is missing. */
export function interfaceIndex(ifname: string, netns: string | null): number | null {
  try {
    return native.ifindex(ifname, netns);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENODEV") return null;
    throw fromNative(e);
  }
}
