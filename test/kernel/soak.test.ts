// Long-running safety: 200 reconciles in one process, alternating two revisions that touch every
// strategy (XDP and tcx link updates, a chain slot, a chain rebuild, make-before-break on a
// tracepoint, a map migrate, initial entries), leave the process's fds, the kernel's program, link
// and map counts and the heap flat.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { listLinks, listMaps, listPrograms } from "../../reconciler/kernel/observe.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { needs, openFdCount, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo, HDR, tempRepo, writeRepo } from "./repos.ts";

function revision(lab: Lab, lab2: Lab, v: 1 | 2): Record<string, string> {
  const stage = (name: string, index: number, version: number) =>
    `${HDR}kind: Program\nmetadata: { name: ${name} }\nspec: { object: objs/xdp_stage.o, program: xdp_stage, globals: { stage_index: ${index}, stage_version: ${version} }, maps: { xdp_chain: { bind: slots } } }\n`;
  return {
    "m.yaml": `${HDR}kind: Map\nmetadata: { name: rules }\nspec: { type: array, keySize: 4, valueSize: 32, maxEntries: 64, overwriteEntries: true, entries: [{ key: 0, value: "hex:${`0${v}`.padEnd(64, "0")}" }] }\n---
${HDR}kind: Map\nmetadata: { name: scratch }\nspec: { type: hash, keySize: 4, valueSize: 8, maxEntries: ${16 * v}, onChange: migrate }\n---
${HDR}kind: Map\nmetadata: { name: slots }\nspec: { type: prog_array, keySize: 4, valueSize: 4, maxEntries: ${4 * v}, onChange: recreate }\n---
${HDR}kind: Map\nmetadata: { name: other-slots }\nspec: { type: prog_array, keySize: 4, valueSize: 4, maxEntries: 4 }\n---
${HDR}kind: Program\nmetadata: { name: filter }\nspec: { object: objs/pod_filter.o, program: pod_filter, globals: { filter_version: ${v} }, maps: { pod_rules: { bind: rules } } }\n---
${HDR}kind: Attachment\nmetadata: { name: filter }\nspec: { program: filter, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n---
${HDR}kind: Program\nmetadata: { name: counter }\nspec: { object: objs/tcx_counter.o, program: tcx_counter, globals: { counter_version: ${v} } }\n---
${HDR}kind: Attachment\nmetadata: { name: counter }\nspec: { program: counter, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }\n---
${HDR}kind: Program\nmetadata: { name: tp }\nspec: { object: objs/tp_counter.o, program: count_getppid, globals: { target_tgid: ${v} } }\n---
${HDR}kind: Attachment\nmetadata: { name: tp }\nspec: { program: tp, hook: { type: tracepoint, name: syscalls/sys_enter_getppid } }\n---
${HDR}kind: Program\nmetadata: { name: dispatcher }\nspec: { object: objs/xdp_dispatcher.o, program: xdp_dispatcher, maps: { xdp_chain: { bind: slots } } }\n---
${stage("a", 0, 1)}---\n${stage("b", 1, v)}---
${HDR}kind: Chain\nmetadata: { name: rebuilt }\nspec: { root: dispatcher, progArray: slots, stages: [a, b], hook: { type: xdp, netns: ${lab.src.netns}, interfaces: [src0] } }\n---
${HDR}kind: Program\nmetadata: { name: dispatcher2 }\nspec: { object: objs/xdp_dispatcher.o, program: xdp_dispatcher, maps: { xdp_chain: { bind: other-slots } } }\n---
${HDR}kind: Program\nmetadata: { name: c }\nspec: { object: objs/xdp_stage.o, program: xdp_stage, globals: { stage_index: 0, stage_version: ${v} }, maps: { xdp_chain: { bind: other-slots } } }\n---
${HDR}kind: Chain\nmetadata: { name: slotted }\nspec: { root: dispatcher2, progArray: other-slots, stages: [c], hook: { type: xdp, netns: ${lab2.src.netns}, interfaces: [src0] } }\n`,
  };
}

describe("long-running safety", () => {
  it("200 reconciles alternating two revisions leave fds, kernel objects and the heap flat", async (ctx) => {
    needs(ctx, "xdpLinkUpdate", "tcxLinkUpdate");
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const lab = tempLab();
    const lab2 = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(revision(lab, lab2, 1));
    const strategies = new Set<string>();
    const reconcile = async (i: number) => {
      writeRepo(dir, revision(lab, lab2, (1 + (i % 2)) as 1 | 2));
      const r = await applyRepo(dir, root);
      for (const a of r.plan.actions) if (a.op !== "unchanged") strategies.add(a.strategy ? `${a.op} ${a.strategy}` : `${a.op} ${a.kind}`);
    };
    const counts = () => ({ fds: openFdCount(), programs: listPrograms().length, links: listLinks().length, maps: listMaps().length });
    for (let i = 0; i < 20; i++) await reconcile(i);
    gc();
    await new Promise((r) => setTimeout(r, 200));
    const before = counts();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 20; i < 200; i++) await reconcile(i);
    gc();
    // Programs and maps are freed after an RCU grace period: give the kernel a moment.
    await expect.poll(counts, { timeout: 5000 }).toEqual(before);
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    expect(heapGrowth, `heap grew by ${heapGrowth} bytes`).toBeLessThan(8 << 20);
    expect([...strategies].sort()).toEqual(
      expect.arrayContaining(["swap link-update", "swap make-before-break", "swap chain-slot", "swap chain-rebuild", "migrate Map", "recreate Map", "set-entries Map", "load Program", "prune Program"]),
    );
  }, 180_000);
});
