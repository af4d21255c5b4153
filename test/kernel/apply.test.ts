// `reconcile` applying revisions to the real kernel: upgrades under traffic lose nothing and keep
// map contents; bad revisions change nothing; maps follow their change policy; removed objects
// are pruned; a second run is a no-op; and only one reconcile runs at a time.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ApplyRefusedError } from "../../reconciler/agent/reconcile-once.ts";
import { VerifierRejectedError } from "../../reconciler/kernel/errors.ts";
import { encodePodRule, readPodStats, ruleKey } from "../../reconciler/lab/pod-rules.ts";
import { readPerCpuU64 } from "../../reconciler/kernel/handles.ts";
import { podFlows } from "../../reconciler/lab/drills.ts";
import { runTraffic, sum } from "../../reconciler/lab/traffic.ts";
import { kernelIds, queryTcxHook, queryXdpHook } from "../../reconciler/kernel/observe.ts";
import { listPins, openPinnedMap } from "../../reconciler/kernel/pins.ts";
import { acquireHostLock } from "../../reconciler/host/host-lock.ts";
import { layout } from "../../reconciler/core/layout.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { BPF, closeAtEnd, getppidCaller, needs, tempCgroup, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo, HDR, podRulesMap, tempRepo, writeRepo } from "./repos.ts";

interface Opts {
  filterVersion?: number;
  counterVersion?: number;
  stageVersion?: number;
  chain?: boolean;
  tcx?: boolean;
  extra?: string;
  rulesMaxEntries?: number;
  chainSlots?: number;
  takeover?: boolean;
}

/** The pod filter (rules from drills.podRules) on lab.dst, a tcx counter, and a 2-stage chain on lab.src. */
function repoFiles(lab: Lab, o: Opts = {}): Record<string, string> {
  const files: Record<string, string> = {
    "filter.yaml": `${podRulesMap(lab, o.rulesMaxEntries)}---
${HDR}kind: Program
metadata: { name: pod-filter }
spec: { object: objs/pod_filter.o, program: pod_filter, globals: { filter_version: ${o.filterVersion ?? 1} }, maps: { pod_rules: { bind: pod-rules }, pod_stats: { pin: true } } }
---
${HDR}kind: Attachment
metadata: { name: pod-filter }
spec: { program: pod-filter, takeover: ${o.takeover ?? false}, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }
`,
  };
  if (o.tcx ?? true) {
    files["tcx.yaml"] = `${HDR}kind: Program
metadata: { name: counter }
spec: { object: objs/tcx_counter.o, program: tcx_counter, globals: { counter_version: ${o.counterVersion ?? 1} }, maps: { tcx_counts: { pin: true } } }
---
${HDR}kind: Attachment
metadata: { name: counter }
spec: { program: counter, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }
`;
  }
  if (o.chain) {
    const stage = (name: string, index: number) => `${HDR}kind: Program
metadata: { name: ${name} }
spec: { object: objs/xdp_stage.o, program: xdp_stage, globals: { stage_index: ${index}, stage_version: ${o.stageVersion ?? 1} }, maps: { xdp_chain: { bind: chain-slots }, xdp_stage_stats: { pin: true } } }
`;
    // Chain on the dst side instead of the filter: the dispatcher drops what falls through an empty slot.
    files["filter.yaml"] = files["filter.yaml"]!.replace(`interfaces: [dst0]`, `interfaces: [nonexistent0]`).replace(/---\n[^]*kind: Attachment[^]*$/, "");
    files["chain.yaml"] = `${HDR}kind: Map
metadata: { name: chain-slots }
spec: { type: prog_array, keySize: 4, valueSize: 4, maxEntries: ${o.chainSlots ?? 8}, onChange: recreate }
---
${HDR}kind: Program
metadata: { name: dispatcher }
spec: { object: objs/xdp_dispatcher.o, program: xdp_dispatcher, globals: { fallthrough_action: 1 }, maps: { xdp_chain: { bind: chain-slots }, xdp_chain_stats: { pin: true } } }
---
${stage("stage-a", 0)}---
${stage("stage-b", 1)}---
${HDR}kind: Chain
metadata: { name: pipeline }
spec: { root: dispatcher, progArray: chain-slots, stages: [stage-a, stage-b], hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }
`;
  }
  if (o.extra) files["extra.yaml"] = o.extra;
  return files;
}

const apply = (dir: string, root: string) => applyRepo(dir, root);
const snapshot = (root: string) => ({ ids: kernelIds(), pins: listPins(root) });

describe("reconcile applies a revision", () => {
  it("upgrades the filter and the tcx counter under traffic: nothing legitimate lost, every packet of death dropped, maps kept", async (ctx) => {
    needs(ctx, "xdpLinkUpdate", "tcxLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(repoFiles(lab));
    const first = await apply(dir, root);
    expect(first.plan.summary).toMatchObject({ create: 1, load: 2, attach: 2 });
    // An operator's rule, written straight into the pinned map: the upgrade must keep it.
    const rules = closeAtEnd(openPinnedMap(layout.map(root, "pod-rules")));
    rules.update(ruleKey(20), encodePodRule({ action: "drop", protocol: "udp", dport: 9999 }));
    const rulesBefore = rules.entries().map((e) => e.value.toString("hex"));
    const filterBefore = queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId;

    writeRepo(dir, repoFiles(lab, { filterVersion: 2, counterVersion: 2 }));
    const flows = podFlows(lab);
    let upgrade: Awaited<ReturnType<typeof apply>> | undefined;
    const r = await runTraffic(lab, {
      flows,
      pps: 40_000,
      count: 60_000,
      during: async () => {
        await new Promise((res) => setTimeout(res, 400));
        upgrade = await apply(dir, root);
      },
    });
    expect(upgrade!.plan.actions.filter((a) => a.op !== "unchanged").map((a) => `${a.op} ${a.kind}/${a.name}${a.strategy ? ` ${a.strategy}` : ""}`)).toEqual([
      "load Program/counter",
      "load Program/pod-filter",
      "swap Attachment/counter link-update",
      "swap Attachment/pod-filter link-update",
      "prune Program/counter",
      "prune Program/pod-filter",
    ]);
    expect(queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId).not.toBe(filterBefore);
    const death = flows.filter((f) => f.name.startsWith("death")).map((f) => f.name);
    const legit = flows.filter((f) => !f.name.startsWith("death")).map((f) => f.name);
    expect(r.socketDrops).toBe(0);
    expect(sum(r.received, legit)).toBe(sum(r.sent, legit));
    expect(sum(r.received, death)).toBe(0);
    // The counters live in pinned maps shared by both versions: they saw every packet.
    const stats = openPinnedMap(`${layout.objectMapsDir(root, "pod-filter")}/pod_stats`);
    expect(readPodStats(stats).reduce((a, s) => a + s.dropped, 0n)).toBe(BigInt(sum(r.sent, death)));
    stats.close();
    const counts = openPinnedMap(`${layout.objectMapsDir(root, "counter")}/tcx_counts`);
    expect(readPerCpuU64(counts, 1) + readPerCpuU64(counts, 2)).toBe(BigInt(sum(r.received)));
    // Each version ran: the old one before the swap, the new one after (a swap between identical versions would prove nothing).
    expect([readPerCpuU64(counts, 1) > 0n, readPerCpuU64(counts, 2) > 0n]).toEqual([true, true]);
    counts.close();
    const versions = openPinnedMap(`${layout.objectMapsDir(root, "pod-filter")}/pod_versions`);
    expect([readPerCpuU64(versions, 1) > 0n, readPerCpuU64(versions, 2) > 0n]).toEqual([true, true]);
    versions.close();
    expect(rules.entries().map((e) => e.value.toString("hex"))).toEqual(rulesBefore);
    // Applied: a second reconcile changes nothing.
    expect((await apply(dir, root)).plan.changes).toBe(false);
  });

  it("swaps a chain stage with one slot update under traffic, never leaving the slot empty", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(repoFiles(lab, { chain: true, tcx: false }));
    writeRepo(dir, repoFiles(lab, { chain: true, tcx: false }));
    await apply(dir, root);
    writeRepo(dir, repoFiles(lab, { chain: true, tcx: false, stageVersion: 2 }));
    let upgrade: Awaited<ReturnType<typeof apply>> | undefined;
    const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("through the chain") }];
    const r = await runTraffic(lab, { flows, pps: 40_000, count: 40_000, during: async () => void (upgrade = await apply(dir, root)) });
    expect(upgrade!.plan.actions.filter((a) => a.kind === "Chain" && a.op === "swap").map((a) => `${a.slot} ${a.strategy}`)).toEqual(["0 chain-slot", "1 chain-slot"]);
    expect(r.received.udp).toBe(40_000);
    const chainStats = openPinnedMap(`${layout.objectMapsDir(root, "dispatcher")}/xdp_chain_stats`);
    expect(readPerCpuU64(chainStats, 1)).toBe(0n); // nothing fell through an empty slot
    chainStats.close();
  });

  it("rebuilds a chain beside the old one when its prog-array is replaced, and switches it with one root update", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(repoFiles(lab, { chain: true, tcx: false }));
    await apply(dir, root);
    writeRepo(dir, repoFiles(lab, { chain: true, tcx: false, chainSlots: 16 }));
    let upgrade: Awaited<ReturnType<typeof apply>> | undefined;
    const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("through the chain") }];
    const r = await runTraffic(lab, { flows, pps: 40_000, count: 40_000, during: async () => void (upgrade = await apply(dir, root)) });
    expect(upgrade!.plan.actions.filter((a) => a.op !== "unchanged" && a.op !== "load" && a.op !== "prune").map((a) => `${a.op} ${a.kind}/${a.name} ${a.strategy ?? ""}`.trim())).toEqual([
      "recreate Map/chain-slots",
      "swap Chain/pipeline chain-rebuild",
      "swap Chain/pipeline link-update",
    ]);
    expect(r.received.udp).toBe(40_000);
    const chainStats = openPinnedMap(`${layout.objectMapsDir(root, "dispatcher")}/xdp_chain_stats`);
    expect(readPerCpuU64(chainStats, 1)).toBe(0n);
    chainStats.close();
    const slots = openPinnedMap(layout.map(root, "chain-slots"));
    expect(slots.info().maxEntries).toBe(16);
    slots.close();
    expect((await apply(dir, root)).plan.changes).toBe(false);
  });

  it("takes over another tool's XDP link atomically when the manifest says takeover", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const { loadObject } = await import("../../reconciler/kernel/object.ts");
    const { attachXdpLink } = await import("../../reconciler/kernel/attach.ts");
    const other = closeAtEnd(await loadObject(BPF("pod_filter.o"), { pinRoot: tempPinRoot() }));
    const foreign = closeAtEnd(other.program("pod_filter"));
    const link = closeAtEnd(attachXdpLink(foreign, { ifname: "dst0", netns: lab.dst.netns }));
    const dir = tempRepo(repoFiles(lab, { tcx: false }));
    await expect(apply(dir, root)).rejects.toMatchObject({ code: "Conflict" });
    writeRepo(dir, repoFiles(lab, { tcx: false, takeover: true }));
    const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("legit") }];
    let taken: Awaited<ReturnType<typeof apply>> | undefined;
    const r = await runTraffic(lab, { flows, pps: 40_000, count: 40_000, during: async () => void (taken = await apply(dir, root)) });
    expect(taken!.plan.actions.find((a) => a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "takeover" });
    expect(r.received.udp).toBe(40_000);
    const now = queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId;
    expect(now).not.toBe(foreign.id);
    expect(link.info().progId).toBe(now); // the same link, now running bpfops's program
    expect(listPins(root).some((p) => p.kind === "link" && p.path.includes("/links/pod-filter/"))).toBe(true);
    expect((await apply(dir, root)).plan.changes).toBe(false);
  });

  it("swaps a cgroup program with a link update while a process in the cgroup sends", async (ctx) => {
    needs(ctx, "cgroupLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const cg = tempCgroup();
    const doc = (v: number) =>
      `${HDR}kind: Program\nmetadata: { name: egress }\nspec: { object: objs/t_cgroup_skb.o, program: cg_egress, globals: { cg_version: ${v} }, maps: { cg_counts: { pin: true } } }\n---\n` +
      `${HDR}kind: Attachment\nmetadata: { name: egress }\nspec: { program: egress, hook: { type: cgroup, path: ${cg}, attachType: cgroup_inet_egress } }\n`;
    const dir = tempRepo({ "cg.yaml": doc(1) });
    await apply(dir, root);
    writeRepo(dir, { "cg.yaml": doc(2) });
    let upgrade: Awaited<ReturnType<typeof apply>> | undefined;
    const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("from the cgroup") }];
    const r = await runTraffic(lab, { flows, pps: 20_000, count: 20_000, senderCgroup: cg, during: async () => void (upgrade = await apply(dir, root)) });
    expect(upgrade!.plan.actions.find((a) => a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "link-update" });
    expect(r.received.udp).toBe(20_000);
    const counts = openPinnedMap(`${layout.objectMapsDir(root, "egress")}/cg_counts`);
    const at = (i: number) => counts.lookup(ruleKey(i))!.readBigUInt64LE(0);
    expect(at(0)).toBe(20_000n); // every packet the cgroup sent went through one version or the other
    expect(at(2) > 0n && at(3) > 0n).toBe(true); // both versions ran
    expect(at(2) + at(3)).toBe(20_000n);
    counts.close();
  });

  it("a revision with a program the verifier rejects changes nothing; the error names the program", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(repoFiles(lab, { tcx: false }));
    await apply(dir, root);
    const before = snapshot(root);
    const bad = `${HDR}kind: Program\nmetadata: { name: unchecked }\nspec: { object: objs/t_rejected.o, program: unchecked_read }\n`;
    writeRepo(dir, repoFiles(lab, { tcx: false, filterVersion: 5, extra: bad }));
    const err = await apply(dir, root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerifierRejectedError);
    expect((err as VerifierRejectedError).program).toBe("unchecked_read");
    await expect.poll(() => snapshot(root), { timeout: 5000, interval: 50 }).toEqual(before);
  });

  it("a missing interface or an incompatible map under keep is refused before anything changes", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(repoFiles(lab, { tcx: false }));
    await apply(dir, root);
    const before = snapshot(root);
    writeRepo(dir, { ...repoFiles(lab, { tcx: false, filterVersion: 3 }), "x.yaml": `${HDR}kind: Attachment\nmetadata: { name: gone }\nspec: { program: pod-filter, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [eth9] } }\n` });
    await expect(apply(dir, root)).rejects.toMatchObject({ code: "Blocked", message: expect.stringMatching(/Attachment\/gone \(xdp eth9 in netns .*\): .*interface not found/) });
    writeRepo(dir, repoFiles(lab, { tcx: false, filterVersion: 3, rulesMaxEntries: 128 }));
    const err = await apply(dir, root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyRefusedError);
    expect((err as Error).message).toMatch(/Map\/pod-rules: definition changed \(maxEntries 64 -> 128\) and onChange is keep.* \[filter\.yaml\]/);
    expect(snapshot(root)).toEqual(before);
  });

  it("migrate copies the entries that fit into the new map and reports the rest; recreate starts empty", async (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    const mapDoc = (max: number, policy: string) => `${HDR}kind: Map\nmetadata: { name: table }\nspec: { type: hash, keySize: 4, valueSize: 8, maxEntries: ${max}, onChange: ${policy} }\n`;
    const dir = tempRepo({ "m.yaml": mapDoc(8, "migrate") });
    await apply(dir, root);
    const m = openPinnedMap(layout.map(root, "table"));
    for (let i = 0; i < 6; i++) m.update(ruleKey(i), Buffer.alloc(8, i));
    m.close();
    writeRepo(dir, { "m.yaml": mapDoc(4, "migrate") });
    const r = await apply(dir, root);
    expect(r.plan.actions).toMatchObject([{ op: "migrate", kind: "Map", name: "table" }]);
    expect(r.applied!.notes).toEqual(["Map/table: migrated 4 entries, 2 did not fit and were left behind"]);
    const after = openPinnedMap(layout.map(root, "table"));
    expect(after.info().maxEntries).toBe(4);
    expect(after.entries()).toHaveLength(4);
    after.close();
    writeRepo(dir, { "m.yaml": mapDoc(16, "recreate") });
    await apply(dir, root);
    const fresh = openPinnedMap(layout.map(root, "table"));
    expect([fresh.info().maxEntries, fresh.entries().length]).toEqual([16, 0]);
    fresh.close();
    expect(listPins(root).map((p) => p.path.slice(root.length))).toEqual(["/maps/table", "/state"]);
  });

  it("prunes what the revision no longer names, and only that", async (ctx) => {
    needs(ctx, "xdpLink", "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(repoFiles(lab));
    await apply(dir, root);
    writeRepo(dir, repoFiles(lab, { tcx: false }));
    const r = await apply(dir, root);
    expect(r.plan.actions.filter((a) => a.op === "prune").map((a) => `${a.kind}/${a.name}`)).toEqual(["Attachment/counter", "Program/counter"]);
    expect(queryTcxHook({ ifname: "dst0", netns: lab.dst.netns, direction: "ingress" }).progIds).toEqual([]);
    expect(queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId).not.toBe(0);
    expect(listPins(root).map((p) => p.path.slice(root.length)).filter((p) => p.includes("counter"))).toEqual([]);
  });

  it("a tracepoint program is replaced make-before-break", async (ctx) => {
    needs(ctx, "tracefs");
    const root = tempPinRoot();
    const doc = (v: number) => `${HDR}kind: Program\nmetadata: { name: getppid }\nspec: { object: objs/tp_counter.o, program: count_getppid, globals: { target_tgid: ${v} } }\n---\n${HDR}kind: Attachment\nmetadata: { name: getppid }\nspec: { program: getppid, hook: { type: tracepoint, name: syscalls/sys_enter_getppid } }\n`;
    const dir = tempRepo({ "tp.yaml": doc(1) });
    await apply(dir, root);
    writeRepo(dir, { "tp.yaml": doc(2) });
    const r = await apply(dir, root);
    expect(r.plan.actions.find((a) => a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "make-before-break" });
    expect(listPins(root).filter((p) => p.kind === "link").map((p) => p.path.slice(root.length))).toEqual(["/links/getppid/tracepoint@syscalls%2Fsys_enter_getppid"]);
    expect((await apply(dir, root)).plan.changes).toBe(false);
  });

  it("a tp_btf program is attached by its manifest, counts, is swapped make-before-break, and is pruned", async (ctx) => {
    needs(ctx, "btf");
    const root = tempPinRoot();
    // __NR_getppid of this host's architecture
    const nr = ({ x64: 110, arm64: 173, s390x: 64, ppc64: 64 } as Record<string, number>)[process.arch] ?? 110;
    const doc = (tgid: number, version: number, hookName = "sys_enter") =>
      `${HDR}kind: Program\nmetadata: { name: btf }\nspec: { object: objs/t_tp_btf.o, program: count_enter, globals: { target_tgid: ${tgid}, version: ${version}, nr_getppid: ${nr} }, maps: { btf_counts: { pin: true } } }\n---\n${HDR}kind: Attachment\nmetadata: { name: btf }\nspec: { program: btf, hook: { type: tp_btf, name: ${hookName} } }\n`;
    const counts = () => {
      const m = openPinnedMap(`${layout.objectMapsDir(root, "btf")}/btf_counts`);
      try {
        return [0, 1, 2].map((k) => m.lookup(Buffer.from([k, 0, 0, 0]))!.readBigUInt64LE(0));
      } finally {
        m.close();
      }
    };
    const first = await getppidCaller(1000);
    const dir = tempRepo({ "b.yaml": doc(first.pid, 1) });
    await apply(dir, root);
    await first.run();
    expect(counts()).toEqual([1000n, 0n, 1000n]);
    // Version 2: a new program on the same tracepoint, attached before the old link goes.
    const second = await getppidCaller(500);
    writeRepo(dir, { "b.yaml": doc(second.pid, 2) });
    const r = await apply(dir, root);
    expect(r.plan.actions.find((a) => a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "make-before-break" });
    await second.run();
    expect(counts()).toEqual([1500n, 500n, 1000n]);
    expect(listPins(root).filter((p) => p.kind === "link").map((p) => p.path.slice(root.length))).toEqual(["/links/btf/tp_btf@sys_enter"]);
    // A hook that names another tracepoint than the program's section is refused, naming the field.
    writeRepo(dir, { "b.yaml": doc(second.pid, 2, "sys_exit") });
    await expect(apply(dir, root)).rejects.toThrow(/spec\.hook\.name: Program\/btf is built for tracepoint sys_enter \(SEC\("tp_btf\/sys_enter"\)\), not tp_btf sys_exit/);
    // Pruned: nothing left attached.
    writeRepo(dir, { "b.yaml": `${HDR}kind: Program\nmetadata: { name: other }\nspec: { object: objs/tp_counter.o, program: count_getppid }\n` });
    await apply(dir, root);
    expect(listPins(root).filter((p) => p.kind === "link")).toEqual([]);
  });
});

describe("cgroup sysctl hooks", () => {
  it("a cgroup sysctl program denies a sysctl read to its cgroup only, is swapped by link update, and pruned", async (ctx) => {
    needs(ctx, "cgroupLinkUpdate");
    const root = tempPinRoot();
    const cg = tempCgroup();
    const doc = (version: number) =>
      `${HDR}kind: Program\nmetadata: { name: sysctl }\nspec: { object: objs/t_cgroup_sysctl.o, program: deny_ostype, globals: { version: ${version} }, maps: { sysctl_denied: { pin: true } } }\n---\n${HDR}kind: Attachment\nmetadata: { name: sysctl }\nspec: { program: sysctl, hook: { type: cgroup, path: ${cg}, attachType: cgroup_sysctl } }\n`;
    /** Reads kernel/ostype from a process of the test's cgroup (inCgroup) or of this one. */
    const read = (inCgroup: boolean) => spawnSync("sh", ["-c", `${inCgroup ? `echo $$ > ${cg}/cgroup.procs && ` : ""}cat /proc/sys/kernel/ostype`], { encoding: "utf8" });
    const denied = () => {
      const m = openPinnedMap(`${layout.objectMapsDir(root, "sysctl")}/sysctl_denied`);
      try {
        return [0, 1, 2].map((k) => Number(m.lookup(Buffer.from([k, 0, 0, 0]))!.readBigUInt64LE(0)));
      } finally {
        m.close();
      }
    };
    const dir = tempRepo({ "s.yaml": doc(1) });
    await applyRepo(dir, root);
    expect(read(true)).toMatchObject({ status: 1, stderr: expect.stringMatching(/Operation not permitted/) });
    expect(read(false)).toMatchObject({ status: 0, stdout: "Linux\n" });
    expect(denied()).toEqual([1, 0, 1]);
    writeRepo(dir, { "s.yaml": doc(2) });
    const r = await applyRepo(dir, root);
    expect(r.plan.actions.find((a) => a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "link-update" });
    expect(read(true).status).toBe(1);
    expect(denied()).toEqual([2, 1, 1]);
    writeRepo(dir, { "s.yaml": `${HDR}kind: Program\nmetadata: { name: other }\nspec: { object: objs/tp_counter.o, program: count_getppid }\n` });
    await applyRepo(dir, root);
    expect(read(true)).toMatchObject({ status: 0, stdout: "Linux\n" });
  });
});

describe("bpfops reconcile (CLI)", () => {
  const cli = (args: string[]) => spawnSync(process.execPath, ["bin/bpfops.cjs", "reconcile", ...args], { encoding: "utf8" });

  it("applies, then prints no changes and exits 0 on the second run", (ctx) => {
    needs(ctx, "xdpLink", "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(repoFiles(lab));
    const first = cli(["--path", dir, "--bpffs", root]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/applied in [\d.]+ ms/);
    const second = cli(["--path", dir, "--bpffs", root]);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/No changes: \d+ objects as the manifests say\./);
  });

  it("bpftool prog show, link show and map dump agree with bpfops status", (ctx) => {
    needs(ctx, "xdpLink", "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(repoFiles(lab));
    expect(cli(["--path", dir, "--bpffs", root]).status).toBe(0);
    const status = spawnSync(process.execPath, ["bin/bpfops.cjs", "status", "--bpffs", root, "--output", "json"], { encoding: "utf8" });
    expect(status.status, status.stderr).toBe(0);
    const objects = JSON.parse(status.stdout).objects as Array<{ kind: string; name: string; id: number; detail: Record<string, unknown>; provenance?: { manifest: string } }>;
    const bpftool = (...args: string[]) => JSON.parse(spawnSync("bpftool", ["-j", ...args], { encoding: "utf8" }).stdout);
    const progs = new Map((bpftool("prog", "show") as Array<{ id: number; tag: string; name: string }>).map((p) => [p.id, p]));
    const links = new Map((bpftool("link", "show") as Array<{ id: number; prog_id: number }>).map((l) => [l.id, l]));
    const programs = objects.filter((o) => o.kind === "Program");
    expect(programs.map((p) => p.name).sort()).toEqual(["counter", "pod-filter"]);
    for (const p of programs) {
      expect(progs.get(p.id)).toMatchObject({ tag: p.detail.tag, name: p.detail.kernelName });
      expect(p.provenance?.manifest).toMatch(/^(filter|tcx)\.yaml$/);
    }
    const attached = objects.filter((o) => o.kind === "Attachment");
    expect(attached).toHaveLength(2);
    for (const l of attached) expect(links.get(l.id)).toMatchObject({ prog_id: l.detail.progId });
    const rules = objects.find((o) => o.kind === "Map" && o.name === "pod-rules")!;
    const dump = bpftool("map", "dump", "pinned", `${root}/maps/pod-rules`) as unknown[];
    expect(dump).toHaveLength(rules.detail.entries as number);
    const human = spawnSync(process.execPath, ["bin/bpfops.cjs", "status", "--bpffs", root], { encoding: "utf8" }).stdout;
    expect(human).toMatch(/^NAME\s+KIND\s+HOOK\s+REVISION\s+READY\s+MESSAGE$/m);
    expect(human).toMatch(/^pod-filter\s+Attachment\s+xdp@\S*dst0\s+\S+\s+True\s+xdp link running prog \d+ \(id \d+\)  \[filter\.yaml\]$/m);
  });

  it("one reconcile at a time: a second one without --wait says who holds the lock", async (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    const lock = await acquireHostLock(root, { wait: false });
    try {
      const dir = tempRepo({ "m.yaml": `${HDR}kind: Map\nmetadata: { name: t }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 4 }\n` });
      const r = cli(["--path", dir, "--bpffs", root, "--no-wait"]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`another reconcile of ${root} is running \\(pid ${process.pid}\\)`));
    } finally {
      lock.release();
    }
  });
});
