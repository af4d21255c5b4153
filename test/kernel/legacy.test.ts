// The attach paths of older kernels through the engine: with tcx, XDP links and cgroup links
// hidden from the probes (BPFOPS_HIDE_FEATURES, the tests' override), reconcile attaches through
// TC cls_bpf, netlink XDP and BPF_PROG_ATTACH, replaces each atomically under traffic, finds them
// owned from a new process, and prunes them.
import { spawnSync } from "node:child_process";
import { describe, expect, it, onTestFinished } from "vitest";
import { podFlows } from "../../reconciler/lab/drills.ts";
import { runTraffic, sum } from "../../reconciler/lab/traffic.ts";
import { listLinks, queryCgroupHook, queryTcxHook, queryXdpHook } from "../../reconciler/kernel/observe.ts";
import { queryTcFilter } from "../../reconciler/kernel/legacy-attach.ts";
import { tcFilterOf } from "../../reconciler/host/legacy-hooks.ts";
import { layout } from "../../reconciler/core/layout.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { tempCgroup, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo, HDR, podRulesMap, tempRepo, writeRepo } from "./repos.ts";

const HIDDEN = "tcx,xdpLink,cgroupLinkUpdate";

/** Hides the link features from bpfops's probes for this test (and the processes it starts). */
function hideLinks(): void {
  const before = process.env.BPFOPS_HIDE_FEATURES;
  process.env.BPFOPS_HIDE_FEATURES = HIDDEN;
  onTestFinished(() => {
    if (before === undefined) delete process.env.BPFOPS_HIDE_FEATURES;
    else process.env.BPFOPS_HIDE_FEATURES = before;
  });
}

/** The packet-of-death filter on dst0 (XDP), the counter on dst0 ingress (tcx), a cgroup egress counter. */
function files(lab: Lab, cg: string, version: number): Record<string, string> {
  return {
    "filter.yaml": `${podRulesMap(lab)}---
${HDR}kind: Program
metadata: { name: pod-filter }
spec: { object: objs/pod_filter.o, program: pod_filter, globals: { filter_version: ${version} }, maps: { pod_rules: { bind: pod-rules }, pod_stats: { pin: true } } }
---
${HDR}kind: Attachment
metadata: { name: pod-filter }
spec: { program: pod-filter, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }
`,
    "tc.yaml": `${HDR}kind: Program
metadata: { name: counter }
spec: { object: objs/tcx_counter.o, program: tcx_counter, globals: { counter_version: ${version} }, maps: { tcx_counts: { pin: true } } }
---
${HDR}kind: Attachment
metadata: { name: counter }
spec: { program: counter, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }
`,
    "cg.yaml": `${HDR}kind: Program
metadata: { name: egress }
spec: { object: objs/t_cgroup_skb.o, program: cg_egress, globals: { cg_version: ${version} }, maps: { cg_counts: { pin: true } } }
---
${HDR}kind: Attachment
metadata: { name: egress }
spec: { program: egress, hook: { type: cgroup, path: ${cg}, attachType: cgroup_inet_egress } }
`,
  };
}

const KEEP = { "keep.yaml": `${HDR}kind: Map\nmetadata: { name: keep }\nspec: { type: array, keySize: 4, valueSize: 4, maxEntries: 1 }\n` };

describe("legacy attach paths", () => {
  it("attach through TC cls_bpf, netlink XDP and BPF_PROG_ATTACH, are owned after a restart, are replaced atomically under traffic, and are pruned", async () => {
    hideLinks();
    const lab = tempLab();
    const root = tempPinRoot();
    const cg = tempCgroup();
    const dir = tempRepo(files(lab, cg, 1));
    const first = await applyRepo(dir, root);
    const hooks = first.plan.actions.filter((a) => a.kind === "Attachment");
    expect(hooks.map((a) => [a.name, a.op, a.reason])).toEqual([
      ["counter", "attach", expect.stringMatching(/through TC clsact \+ cls_bpf \(netlink\) \(this kernel has no tcx links\)/)],
      ["egress", "attach", expect.stringMatching(/through BPF_PROG_ATTACH/)],
      ["pod-filter", "attach", expect.stringMatching(/through netlink XDP/)],
    ]);
    // In the kernel: the programs on their hooks, and no BPF link holding any of them.
    const filter = tcFilterOf({ type: "tcx", netns: lab.dst.netns, ifname: "dst0", direction: "ingress" }, `${layout.linksDir(root)}/counter/x`);
    const onHooks = () => [queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId, queryTcFilter(filter), queryCgroupHook(cg, "cgroup_inet_egress").progIds[0] ?? 0];
    const v1 = onHooks();
    expect(v1.every((id) => id > 0)).toBe(true);
    expect(listLinks().filter((l) => v1.includes(l.progId))).toEqual([]);
    expect(queryTcxHook({ ifname: "dst0", netns: lab.dst.netns, direction: "ingress" }).progIds).toEqual([]);
    expect(queryCgroupHook(cg, "cgroup_inet_egress").linkIds).toEqual([0]);

    // A new bpfops process finds them as its own: nothing to do.
    const again = spawnSync(process.execPath, ["bin/bpfops.cjs", "reconcile", "--dry-run", "--path", dir, "--bpffs", root], { encoding: "utf8", env: process.env });
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/No changes/);

    // Version 2 of all three, applied while traffic flows (the cgroup's too): one atomic replace each.
    writeRepo(dir, files(lab, cg, 2));
    let upgrade: Awaited<ReturnType<typeof applyRepo>> | undefined;
    const flows = podFlows(lab);
    const r = await runTraffic(lab, { flows, pps: 20_000, count: 20_000, senderCgroup: cg, during: async () => void (upgrade = await applyRepo(dir, root)) });
    expect(upgrade!.plan.actions.filter((a) => a.kind === "Attachment").map((a) => [a.name, a.op, a.strategy])).toEqual([
      ["counter", "swap", "replace"],
      ["egress", "swap", "replace"],
      ["pod-filter", "swap", "replace"],
    ]);
    const death = flows.filter((f) => f.name.startsWith("death")).map((f) => f.name);
    const legit = flows.filter((f) => !f.name.startsWith("death")).map((f) => f.name);
    expect(sum(r.received, legit)).toBe(sum(r.sent, legit));
    expect(sum(r.received, death)).toBe(0);
    // Each hook runs the new version: other program ids, none of them 0.
    const v2 = onHooks();
    expect(v2.map((id, i) => id > 0 && id !== v1[i])).toEqual([true, true, true]);

    // Pruned: the filter, the XDP program and the cgroup program are gone from their hooks.
    writeRepo(dir, KEEP);
    await applyRepo(dir, root);
    expect(queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId).toBe(0);
    expect(queryTcFilter(filter)).toBe(0);
    expect(queryCgroupHook(cg, "cgroup_inet_egress").progIds).toEqual([]);
  });

  it("bpfops features says which path each hook type takes: the legacy ones when the links are hidden", () => {
    const features = (hide: string) => JSON.parse(spawnSync(process.execPath, ["bin/bpfops.cjs", "features", "--output", "json"], { encoding: "utf8", env: { ...process.env, BPFOPS_HIDE_FEATURES: hide } }).stdout) as { attachPaths: Array<{ hook: string; path: string }> };
    const path = (hide: string, hook: string) => features(hide).attachPaths.find((p) => p.hook === hook)?.path;
    expect([path("", "tcx"), path("", "xdp"), path("", "cgroup")]).toEqual([expect.stringMatching(/^tcx link/), expect.stringMatching(/^BPF link/), expect.stringMatching(/^cgroup link/)]);
    expect([path(HIDDEN, "tcx"), path(HIDDEN, "xdp"), path(HIDDEN, "cgroup")]).toEqual([expect.stringMatching(/^TC clsact \+ cls_bpf/), expect.stringMatching(/^netlink XDP/), expect.stringMatching(/^BPF_PROG_ATTACH/)]);
  });
});
