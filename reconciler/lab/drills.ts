// Swap drills shared by the kernel tests, the demo and bench/swap: the packet-of-death filter,
// a tcx counter and a tail-call chain, each swapped between two program versions under traffic,
// on their BPF links and on the legacy paths (netlink XDP, TC cls_bpf, cgroup BPF_PROG_ATTACH).
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { packageRoot } from "../package-root.ts";
import { loadObject } from "../kernel/object.ts";
import { attachTcxLink, attachXdpLink } from "../kernel/attach.ts";
import { attachCgroupProg, attachTcFilter, attachXdpNetlink, detachCgroupProg, detachTcFilter, detachXdpNetlink } from "../kernel/legacy-attach.ts";
import { readPerCpuU64, u32Key, type LinkHandle, type MapHandle, type ProgramHandle } from "../kernel/handles.ts";
import { readPodStats, writePodRules, type PodRule, type PodStat } from "../lab/pod-rules.ts";
import { runTraffic, type Flow, type TrafficReport } from "./traffic.ts";
import type { Lab } from "./netlab.ts";

export const bpfObject = (name: string): string => join(packageRoot(), "bpf", name);

/** Traffic that exercises every kind of pod rule; flows starting "death" must all be dropped. */
export function podFlows(lab: Lab): Flow[] {
  const [badHost, operator] = lab.src.extraAddrs;
  return [
    { name: "good", dport: 5000, payload: Buffer.from("GET /healthz"), weight: 6 },
    { name: "good-5001", dport: 5001, payload: Buffer.from("xx harmless payload") },
    { name: "operator-probe", dport: 6666, payload: Buffer.from("operator probe"), source: operator! },
    { name: "death-port", dport: 6666, payload: Buffer.from("exploit on 6666") },
    { name: "death-source", dport: 5000, payload: Buffer.from("from a bad host"), source: badHost! },
    { name: "death-pattern", dport: 5001, payload: Buffer.concat([Buffer.from("xx"), Buffer.from("deadbeef", "hex"), Buffer.from(" payload of death")]) },
  ];
}

/** Rules matching podFlows: rule i's counters must equal the sent count of the flow it names. */
export function podRules(lab: Lab): Array<PodRule & { flow: string }> {
  const [badHost, operator] = lab.src.extraAddrs;
  return [
    { flow: "operator-probe", action: "pass", protocol: "udp", dport: 6666, source: `${operator}/32` },
    { flow: "death-port", action: "drop", protocol: "udp", dport: 6666 },
    { flow: "death-source", action: "drop", source: `${badHost}/32` },
    { flow: "death-pattern", action: "drop", protocol: "udp", dport: 5001, pattern: Buffer.from("deadbeef", "hex"), patternOffset: 2 },
  ];
}

export interface SwapTarget {
  what: string;
  /** swap number i: from version (i % 2 ? 2 : 1) to the other, atomically */
  swap(i: number): void;
  close(): void;
}

export interface SwapResult {
  traffic: TrafficReport;
  /** wall time of each swap call, ns */
  swapNs: number[];
}

/** Runs traffic and performs `swaps` swaps spread evenly over it. */
export async function swapUnderTraffic(lab: Lab, target: SwapTarget, opts: { flows: Flow[]; pps: number; count: number; swaps: number; senderCgroup?: string }): Promise<SwapResult> {
  const swapNs: number[] = [];
  const spanMs = (opts.count / opts.pps) * 1000;
  const gapMs = Math.max(1, spanMs / (opts.swaps + 2));
  const traffic = await runTraffic(lab, {
    flows: opts.flows,
    pps: opts.pps,
    count: opts.count,
    ...(opts.senderCgroup ? { senderCgroup: opts.senderCgroup } : {}),
    during: async () => {
      await sleep(gapMs);
      for (let i = 0; i < opts.swaps; i++) {
        const t0 = process.hrtime.bigint();
        target.swap(i);
        swapNs.push(Number(process.hrtime.bigint() - t0));
        await sleep(gapMs);
      }
    },
  });
  return { traffic, swapNs };
}

/** The packet-of-death filter on lab.dst, versions 1 and 2 sharing the pinned rules and stats. */
export async function podFilterTarget(lab: Lab, pinRoot: string): Promise<SwapTarget & { rules: MapHandle; stats(): PodStat[]; versions(): [bigint, bigint]; link: LinkHandle; programs: [ProgramHandle, ProgramHandle] }> {
  const objs = [
    await loadObject(bpfObject("pod_filter.o"), { pinRoot }, (o) => o.setGlobal("filter_version", 1)),
    await loadObject(bpfObject("pod_filter.o"), { pinRoot }, (o) => o.setGlobal("filter_version", 2)),
  ] as const;
  const progs: [ProgramHandle, ProgramHandle] = [objs[0].program("pod_filter"), objs[1].program("pod_filter")];
  const rules = objs[0].map("pod_rules");
  const stats = objs[0].map("pod_stats");
  const versions = objs[0].map("pod_versions");
  for (const o of objs) o.close();
  writePodRules(rules, podRules(lab));
  const link = attachXdpLink(progs[0], { ifname: lab.dst.ifname, netns: lab.dst.netns });
  return {
    what: "xdp link",
    rules,
    link,
    programs: progs,
    stats: () => readPodStats(stats),
    versions: () => [readPerCpuU64(versions, 1), readPerCpuU64(versions, 2)],
    swap: (i) => link.update(progs[(i + 1) % 2]!, progs[i % 2]!),
    close: () => [link, ...progs, rules, stats, versions].forEach((h) => h.close()),
  };
}

/** The tcx counter on lab.dst ingress, versions 1 and 2 counting into separate slots. */
export async function tcxCounterTarget(lab: Lab, pinRoot: string): Promise<SwapTarget & { counted(): bigint; versions(): [bigint, bigint]; link: LinkHandle; programs: ProgramHandle[] }> {
  const progs: ProgramHandle[] = [];
  let counts: MapHandle | undefined;
  for (const v of [1, 2]) {
    const o = await loadObject(bpfObject("tcx_counter.o"), { pinRoot }, (x) => x.setGlobal("counter_version", v));
    progs.push(o.program("tcx_counter"));
    counts ??= o.map("tcx_counts");
    o.close();
  }
  const link = attachTcxLink(progs[0]!, { ifname: lab.dst.ifname, netns: lab.dst.netns, direction: "ingress" });
  return {
    what: "tcx link",
    link,
    programs: progs,
    counted: () => readPerCpuU64(counts!, 1) + readPerCpuU64(counts!, 2),
    versions: () => [readPerCpuU64(counts!, 1), readPerCpuU64(counts!, 2)],
    swap: (i) => link.update(progs[(i + 1) % 2]!, progs[i % 2]!),
    close: () => [link, ...progs, counts!].forEach((h) => h.close()),
  };
}

/**
 * The XDP dispatcher on lab.dst with stage versions 1 and 2 swapped in slot 0 of the pinned
 * prog-array. The dispatcher drops what falls through an empty slot, so a gap loses packets.
 */
export async function chainSlotTarget(lab: Lab, pinRoot: string): Promise<SwapTarget & { entered(): bigint; fellThrough(): bigint; staged(): bigint; versions(): [bigint, bigint] }> {
  const root = await loadObject(bpfObject("xdp_dispatcher.o"), { pinRoot }, (o) => o.setGlobal("fallthrough_action", 1 /* XDP_DROP */));
  const dispatcher = root.program("xdp_dispatcher");
  const chain = root.map("xdp_chain");
  const chainStats = root.map("xdp_chain_stats");
  root.close();
  const stages: ProgramHandle[] = [];
  let stageStats: MapHandle | undefined;
  for (const v of [1, 2]) {
    const o = await loadObject(bpfObject("xdp_stage.o"), { pinRoot }, (x) => x.setGlobal("stage_index", 0).setGlobal("stage_version", v));
    stages.push(o.program("xdp_stage"));
    stageStats ??= o.map("xdp_stage_stats");
    o.close();
  }
  chain.setProgramSlot(0, stages[0]!);
  const link = attachXdpLink(dispatcher, { ifname: lab.dst.ifname, netns: lab.dst.netns });
  return {
    what: "prog-array slot",
    entered: () => readPerCpuU64(chainStats, 0),
    fellThrough: () => readPerCpuU64(chainStats, 1),
    staged: () => readPerCpuU64(stageStats!, 1) + readPerCpuU64(stageStats!, 2),
    versions: () => [readPerCpuU64(stageStats!, 1), readPerCpuU64(stageStats!, 2)],
    swap: (i) => chain.setProgramSlot(0, stages[(i + 1) % 2]!),
    close: () => [link, dispatcher, ...stages, chain, chainStats, stageStats!].forEach((h) => h.close()),
  };
}

/**
 * The legacy paths of kernels without BPF links, swapped under the same traffic as the link
 * drills: the packet-of-death filter through netlink XDP (XDP_FLAGS_REPLACE), the tcx counter as
 * a cls_bpf filter (NLM_F_REPLACE on its handle and priority).
 */
export async function xdpNetlinkTarget(lab: Lab, pinRoot: string): Promise<SwapTarget & { stats(): PodStat[]; versions(): [bigint, bigint] }> {
  const t = await podFilterTarget(lab, pinRoot);
  t.link.close(); // the filter runs through netlink instead of a link
  const hook = { ifname: lab.dst.ifname, netns: lab.dst.netns };
  let current = 0;
  attachXdpNetlink(t.programs[0], hook);
  return {
    what: "netlink xdp",
    stats: t.stats,
    versions: t.versions,
    swap: (i) => {
      attachXdpNetlink(t.programs[(i + 1) % 2]!, hook, t.programs[i % 2]!);
      current = (i + 1) % 2;
    },
    close: () => {
      detachXdpNetlink(hook, t.programs[current]!);
      t.close();
    },
  };
}

export async function tcFilterTarget(lab: Lab, pinRoot: string): Promise<SwapTarget & { counted(): bigint; versions(): [bigint, bigint] }> {
  const t = await tcxCounterTarget(lab, pinRoot);
  t.link.close(); // the counter runs as a cls_bpf filter instead of a tcx link
  const filter = { ifname: lab.dst.ifname, netns: lab.dst.netns, direction: "ingress" as const, handle: 1, priority: 0x200 };
  attachTcFilter(t.programs[0]!, filter);
  return {
    what: "tc cls_bpf",
    counted: t.counted,
    versions: t.versions,
    swap: (i) => void attachTcFilter(t.programs[(i + 1) % 2]!, filter, true),
    close: () => {
      detachTcFilter(filter);
      t.close();
    },
  };
}

/** A cgroup_skb egress counter on a cgroup through BPF_PROG_ATTACH, versions swapped with BPF_F_REPLACE. */
export async function cgroupProgTarget(cgroupPath: string, pinRoot: string): Promise<SwapTarget & { counted(): bigint; versions(): [bigint, bigint] }> {
  const progs: ProgramHandle[] = [];
  let counts: MapHandle | undefined;
  for (const v of [1, 2]) {
    // Both versions count into one map (the object does not pin it by name): the second reuses the first's.
    const o = await loadObject(bpfObject("test/t_cgroup_skb.o"), { pinRoot }, (x) => (x.setGlobal("cg_version", v), counts && x.reuseMap("cg_counts", counts)));
    progs.push(o.program("cg_egress"));
    counts ??= o.map("cg_counts");
    o.close();
  }
  let current = 0;
  attachCgroupProg(progs[0]!, cgroupPath, "cgroup_inet_egress");
  const at = (i: number) => counts!.lookup(u32Key(i))!.readBigUInt64LE(0);
  return {
    what: "cgroup prog attach",
    counted: () => at(0),
    versions: () => [at(3), at(2)],
    swap: (i) => {
      attachCgroupProg(progs[(i + 1) % 2]!, cgroupPath, "cgroup_inet_egress", progs[i % 2]!);
      current = (i + 1) % 2;
    },
    close: () => {
      detachCgroupProg(progs[current]!, cgroupPath, "cgroup_inet_egress");
      [...progs, counts!].forEach((h) => h.close());
    },
  };
}
