// Crash safety: a revision touching maps, programs, a chain and several hooks is applied while
// the reconcile process is SIGKILLed before each of its steps in turn. After a restart the desired
// state is reached with no orphaned program, link or pin, map data is intact, and traffic through
// the hooks shows they were never empty.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { encodePodRule, ruleKey } from "../../reconciler/lab/pod-rules.ts";
import { readPerCpuU64 } from "../../reconciler/kernel/handles.ts";
import { podFlows, podRules } from "../../reconciler/lab/drills.ts";
import { runTraffic, sum } from "../../reconciler/lab/traffic.ts";
import { listPins, openPinnedMap, openPinnedProgram } from "../../reconciler/kernel/pins.ts";
import { listPrograms } from "../../reconciler/kernel/observe.ts";
import { layout } from "../../reconciler/core/layout.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { needs, tempLab, tempPinRoot } from "./harness.ts";
import { HDR, tempRepo, writeRepo } from "./repos.ts";

function revision(lab: Lab, v: 1 | 2): Record<string, string> {
  const entries = podRules(lab).map((r, i) => `    - { key: ${i}, value: "hex:${encodePodRule(r).toString("hex")}" }`).join("\n");
  const stage = (name: string, index: number, version: number) =>
    `${HDR}kind: Program\nmetadata: { name: ${name} }\nspec: { object: objs/xdp_stage.o, program: xdp_stage, globals: { stage_index: ${index}, stage_version: ${version} }, maps: { xdp_chain: { bind: chain-slots } } }\n`;
  return {
    "maps.yaml": `${HDR}kind: Map\nmetadata: { name: pod-rules }\nspec:\n  type: array\n  keySize: 4\n  valueSize: 32\n  maxEntries: 64\n  entries:\n${entries}\n---
${HDR}kind: Map\nmetadata: { name: scratch }\nspec: { type: hash, keySize: 4, valueSize: 8, maxEntries: ${v === 1 ? 32 : 64}, onChange: migrate }\n---
${HDR}kind: Map\nmetadata: { name: chain-slots }\nspec: { type: prog_array, keySize: 4, valueSize: 4, maxEntries: 8 }\n${v === 2 ? `---\n${HDR}kind: Map\nmetadata: { name: extra }\nspec: { type: array, keySize: 4, valueSize: 4, maxEntries: 4 }\n` : ""}`,
    "filter.yaml": `${HDR}kind: Program\nmetadata: { name: pod-filter }\nspec: { object: objs/pod_filter.o, program: pod_filter, globals: { filter_version: ${v} }, maps: { pod_rules: { bind: pod-rules }, pod_stats: { pin: true } } }\n---
${HDR}kind: Attachment\nmetadata: { name: pod-filter }\nspec: { program: pod-filter, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n---
${HDR}kind: Program\nmetadata: { name: counter }\nspec: { object: objs/tcx_counter.o, program: tcx_counter, globals: { counter_version: ${v} }, maps: { tcx_counts: { pin: true } } }\n---
${HDR}kind: Attachment\nmetadata: { name: counter }\nspec: { program: counter, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }\n`,
    "chain.yaml": `${HDR}kind: Program\nmetadata: { name: dispatcher }\nspec: { object: objs/xdp_dispatcher.o, program: xdp_dispatcher, maps: { xdp_chain: { bind: chain-slots } } }\n---
${stage("stage-a", 0, 1)}---\n${stage("stage-b", 1, v)}---
${HDR}kind: Chain\nmetadata: { name: pipeline }\nspec: { root: dispatcher, progArray: chain-slots, stages: [stage-a, stage-b], hook: { type: xdp, netns: ${lab.src.netns}, interfaces: [src0] } }\n` +
      (v === 1 ? `---\n${HDR}kind: Program\nmetadata: { name: spare }\nspec: { object: objs/tp_counter.o, program: count_getppid }\n` : ""),
  };
}

const OUR_PROGRAMS = new Set(["pod_filter", "tcx_counter", "xdp_stage", "xdp_dispatcher", "count_getppid"]);

describe("crash safety", () => {
  it("SIGKILL before every step of a revision, then a restart: converged, no orphans, data intact, hooks never empty", async (ctx) => {
    needs(ctx, "xdpLinkUpdate", "tcxLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(revision(lab, 1));
    const reconcile = (killAt?: number, ...extra: string[]) =>
      spawnSync(process.execPath, ["bin/bpfops.js", "reconcile", "--path", dir, "--bpffs", root, "--cache", `${dir}/.cache`, ...extra], {
        encoding: "utf8",
        env: { ...process.env, ...(killAt === undefined ? {} : { BPFOPS_KILL_BEFORE_STEP: String(killAt) }) },
      });
    const ok = (r: ReturnType<typeof reconcile>) => expect(r.status, r.stderr + r.stdout).toBe(0);

    // Reference: the pins of a clean v2, and then back to v1 with data an operator wrote.
    writeRepo(dir, revision(lab, 2));
    ok(reconcile());
    const v2Pins = listPins(root).map((p) => p.path);
    writeRepo(dir, revision(lab, 1));
    ok(reconcile());
    const rules = openPinnedMap(layout.map(root, "pod-rules"));
    rules.update(ruleKey(30), encodePodRule({ action: "drop", protocol: "udp", dport: 9999 }));
    const rulesData = rules.entries().map((e) => e.value.toString("hex"));
    rules.close();
    const scratch = openPinnedMap(layout.map(root, "scratch"));
    for (let i = 0; i < 10; i++) scratch.update(ruleKey(i), Buffer.alloc(8, i + 1));
    scratch.close();

    // Programs of the same names that other processes may have loaded are not ours to judge.
    const preexisting = new Set(listPrograms().map((p) => p.id));
    const killedAt: number[] = [];
    const flows = podFlows(lab);
    const traffic = await runTraffic(lab, {
      flows,
      pps: 8_000,
      count: 2_000_000, // more than the loop needs: sending stops when it is done
      stopWhenDuringEnds: true,
      during: async () => {
        for (let k = 0; ; k++) {
          writeRepo(dir, revision(lab, 2));
          const killed = reconcile(k);
          if (killed.status === 0) break; // k is past the last step: the run completed
          expect(killed.signal, killed.stderr).toBe("SIGKILL");
          killedAt.push(k);
          ok(reconcile()); // the restart converges
          const dry = reconcile(undefined, "--dry-run");
          expect(dry.status, `after a kill before step ${k}:\n${dry.stdout}`).toBe(0);
          expect(listPins(root).map((p) => p.path), `pins after a kill before step ${k}`).toEqual(v2Pins);
          writeRepo(dir, revision(lab, 1));
          ok(reconcile());
        }
      },
    });
    expect(killedAt.length).toBeGreaterThanOrEqual(10);
    expect(killedAt).toEqual(killedAt.map((_, i) => i));

    // No orphans: every program of ours still loaded is one bpfops has pinned.
    const pinned = new Set<number>();
    for (const p of listPins(root).filter((x) => x.kind === "prog")) {
      const h = openPinnedProgram(p.path);
      pinned.add(h.id);
      h.close();
    }
    await expect.poll(() => listPrograms().filter((p) => OUR_PROGRAMS.has(p.name) && !pinned.has(p.id) && !preexisting.has(p.id)).map((p) => `${p.name} ${p.id}`), { timeout: 5000 }).toEqual([]);

    // Map data intact through every kill, switch and migration.
    const rulesAfter = openPinnedMap(layout.map(root, "pod-rules"));
    expect(rulesAfter.entries().map((e) => e.value.toString("hex"))).toEqual(rulesData);
    rulesAfter.close();
    const scratchAfter = openPinnedMap(layout.map(root, "scratch"));
    expect(scratchAfter.info().maxEntries).toBe(64); // v2: the last run completed, migrating the entries
    expect(scratchAfter.entries().map((e) => e.value.toString("hex")).sort()).toEqual(Array.from({ length: 10 }, (_, i) => Buffer.alloc(8, i + 1).toString("hex")).sort());
    scratchAfter.close();

    // The hooks were never empty: nothing legitimate lost, no packet of death through, tcx saw all.
    const death = flows.filter((f) => f.name.startsWith("death")).map((f) => f.name);
    const legit = flows.filter((f) => !f.name.startsWith("death")).map((f) => f.name);
    expect(traffic.socketDrops).toBe(0);
    expect(sum(traffic.received, legit)).toBe(sum(traffic.sent, legit));
    expect(sum(traffic.received, death)).toBe(0);
    const counts = openPinnedMap(`${layout.objectMapsDir(root, "counter")}/tcx_counts`);
    expect(readPerCpuU64(counts, 1) + readPerCpuU64(counts, 2)).toBe(BigInt(sum(traffic.received)));
    counts.close();
  }, 300_000);
});
