// Crash safety: a revision touching maps (a migrate, a replaced prog-array), programs, a chain, a
// tracepoint (make-before-break) and several hooks is applied while the reconcile process is
// SIGKILLed, first before each of its steps in turn, then at random moments. After every restart
// the desired state is reached with no orphans, and the datapath itself is checked: every chain
// stage counts packets, counters land in the pinned maps, and no hook was ever empty.
import { spawn, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { encodePodRule, ruleKey } from "../../reconciler/lab/pod-rules.ts";
import { readPerCpuU64, type MapHandle } from "../../reconciler/kernel/handles.ts";
import { podFlows, podRules } from "../../reconciler/lab/drills.ts";
import { runTraffic, sum, type Flow } from "../../reconciler/lab/traffic.ts";
import { listPins, openPinnedLink, openPinnedMap, openPinnedProgram } from "../../reconciler/kernel/pins.ts";
import { listPrograms } from "../../reconciler/kernel/observe.ts";
import { layout } from "../../reconciler/core/layout.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { closeAtEnd, getppidCaller, needs, sleep, tempLab, tempPinRoot } from "./harness.ts";
import { HDR, planRepo, tempRepo, writeRepo } from "./repos.ts";

const STAGE_VERSIONS = 4;

/** v2's tracepoint program counts the getppid calls of process tgid2 (v1's, those of init). */
function revision(lab: Lab, chainLab: Lab, v: 1 | 2, tgid2 = 2): Record<string, string> {
  const entries = podRules(lab).map((r, i) => `    - { key: ${i}, value: "hex:${encodePodRule(r).toString("hex")}" }`).join("\n");
  const stage = (name: string, index: number, version: number) =>
    `${HDR}kind: Program\nmetadata: { name: ${name} }\nspec: { object: objs/xdp_stage.o, program: xdp_stage, globals: { stage_index: ${index}, stage_version: ${version} }, maps: { xdp_chain: { bind: chain-slots }, xdp_stage_stats: { bind: stage-stats } } }\n`;
  return {
    "maps.yaml": `${HDR}kind: Map\nmetadata: { name: pod-rules }\nspec:\n  type: array\n  keySize: 4\n  valueSize: 32\n  maxEntries: 64\n  entries:\n${entries}\n---
${HDR}kind: Map\nmetadata: { name: scratch }\nspec: { type: hash, keySize: 4, valueSize: 8, maxEntries: ${v === 1 ? 32 : 64}, onChange: migrate }\n---
${HDR}kind: Map\nmetadata: { name: chain-slots }\nspec: { type: prog_array, keySize: 4, valueSize: 4, maxEntries: ${v === 1 ? 8 : 16}, onChange: recreate }\n---
${HDR}kind: Map\nmetadata: { name: stage-stats }\nspec: { type: percpu_array, keySize: 4, valueSize: 8, maxEntries: 32 }\n${v === 2 ? `---\n${HDR}kind: Map\nmetadata: { name: extra }\nspec: { type: array, keySize: 4, valueSize: 4, maxEntries: 4 }\n` : ""}`,
    "filter.yaml": `${HDR}kind: Program\nmetadata: { name: pod-filter }\nspec: { object: objs/pod_filter.o, program: pod_filter, globals: { filter_version: ${v} }, maps: { pod_rules: { bind: pod-rules }, pod_stats: { pin: true } } }\n---
${HDR}kind: Attachment\nmetadata: { name: pod-filter }\nspec: { program: pod-filter, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n---
${HDR}kind: Program\nmetadata: { name: counter }\nspec: { object: objs/tcx_counter.o, program: tcx_counter, globals: { counter_version: ${v} }, maps: { tcx_counts: { pin: true } } }\n---
${HDR}kind: Attachment\nmetadata: { name: counter }\nspec: { program: counter, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }\n---
${HDR}kind: Program\nmetadata: { name: getppid }\nspec: { object: objs/tp_counter.o, program: count_getppid, globals: { target_tgid: ${v === 2 ? tgid2 : 1} }, maps: { tp_counts: { pin: true } } }\n---
${HDR}kind: Attachment\nmetadata: { name: getppid }\nspec: { program: getppid, hook: { type: tracepoint, name: syscalls/sys_enter_getppid } }\n`,
    // The dispatcher drops what falls through an empty slot: a chain that is ever broken loses packets.
    "chain.yaml": `${HDR}kind: Program\nmetadata: { name: dispatcher }\nspec: { object: objs/xdp_dispatcher.o, program: xdp_dispatcher, globals: { fallthrough_action: 1 }, maps: { xdp_chain: { bind: chain-slots }, xdp_chain_stats: { pin: true } } }\n---
${stage("stage-a", 0, 1)}---\n${stage("stage-b", 1, v)}---
${HDR}kind: Chain\nmetadata: { name: pipeline }\nspec: { root: dispatcher, progArray: chain-slots, stages: [stage-a, stage-b], hook: { type: xdp, netns: ${chainLab.dst.netns}, interfaces: [dst0] } }\n` +
      (v === 1 ? `---\n${HDR}kind: Program\nmetadata: { name: spare }\nspec: { object: objs/tp_counter.o, program: count_getppid }\n` : ""),
  };
}

const OUR_PROGRAMS = new Set(["pod_filter", "tcx_counter", "xdp_stage", "xdp_dispatcher", "count_getppid"]);
const CHAIN_FLOWS: Flow[] = [{ name: "chain", dport: 5000, payload: Buffer.from("through every stage") }];

/** Packets each chain stage counted, all versions together. */
function stageCounts(stats: MapHandle): [bigint, bigint] {
  const at = (index: number) => Array.from({ length: STAGE_VERSIONS }, (_, v) => readPerCpuU64(stats, index * STAGE_VERSIONS + v)).reduce((a, b) => a + b, 0n);
  return [at(0), at(1)];
}

interface Rig {
  lab: Lab;
  chainLab: Lab;
  root: string;
  dir: string;
  cli(args?: string[], env?: Record<string, string>): ReturnType<typeof spawnSync>;
  ok(r: ReturnType<typeof spawnSync>): void;
  v2Pins: string[];
  v1Pins: string[];
  tgid2: number;
}

async function rig(tgid2 = 2): Promise<Rig> {
  const lab = tempLab();
  const chainLab = tempLab();
  const root = tempPinRoot();
  const dir = tempRepo(revision(lab, chainLab, 1, tgid2));
  const cli = (args: string[] = [], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, ["bin/bpfops.cjs", "reconcile", "--path", dir, "--bpffs", root, "--cache", `${dir}/.cache`, ...args], { encoding: "utf8", env: { ...process.env, ...env } });
  const ok = (r: ReturnType<typeof cli>) => expect(r.status, String(r.stderr) + String(r.stdout)).toBe(0);
  // Reference: the pins of a clean v2 and of a clean v1.
  writeRepo(dir, revision(lab, chainLab, 2, tgid2));
  ok(cli());
  const v2Pins = listPins(root).map((p) => p.path);
  writeRepo(dir, revision(lab, chainLab, 1, tgid2));
  ok(cli());
  const v1Pins = listPins(root).map((p) => p.path);
  return { lab, chainLab, root, dir, cli, ok, v2Pins, v1Pins, tgid2 };
}

/** After a restart: converged (the dry-run sees nothing to do, the pins are the revision's), and both chain stages count packets. */
async function checkConverged(r: Rig, v: 1 | 2, what: string): Promise<void> {
  const plan = await planRepo(r.dir, r.root);
  expect(plan.actions.filter((a) => a.op !== "unchanged").map((a) => `${a.op} ${a.kind}/${a.name}: ${a.reason}`), `dry-run ${what}`).toEqual([]);
  expect(listPins(r.root).map((p) => p.path), `pins ${what}`).toEqual(v === 2 ? r.v2Pins : r.v1Pins);
  // Every hook runs a pinned version, and the counter's version counts into the pinned map.
  const counts = openPinnedMap(`${layout.objectMapsDir(r.root, "counter")}/tcx_counts`);
  const counterVersions = listPins(`${r.root}/programs/counter`).map((p) => {
    const h = openPinnedProgram(p.path);
    const i = h.info();
    h.close();
    return { id: i.id, mapIds: i.mapIds };
  });
  const linkProgs = listPins(`${r.root}/links`).map((p) => {
    const l = openPinnedLink(p.path);
    const i = l.info();
    l.close();
    return { pin: p.path, progId: i.progId };
  });
  expect(counterVersions.map((v) => v.mapIds.includes(counts.id)), `counter bound to the pinned tcx_counts ${what}`).toEqual(counterVersions.map(() => true));
  const counterLink = linkProgs.find((l) => l.pin.includes("/links/counter/"));
  expect(counterVersions.map((v) => v.id), `counter link runs a pinned version ${what}`).toContain(counterLink?.progId);
  counts.close();
  const stats = openPinnedMap(layout.map(r.root, "stage-stats"));
  try {
    const before = stageCounts(stats);
    await sleep(60);
    const after = stageCounts(stats);
    expect([after[0] > before[0], after[1] > before[1]], `chain stages counting ${what}`).toEqual([true, true]);
  } finally {
    stats.close();
  }
}

async function checkNoOrphans(root: string, preexisting: Set<number>): Promise<void> {
  const pinned = new Set<number>();
  for (const p of listPins(root).filter((x) => x.kind === "prog")) {
    const h = openPinnedProgram(p.path);
    pinned.add(h.id);
    h.close();
  }
  await expect.poll(() => listPrograms().filter((p) => OUR_PROGRAMS.has(p.name) && !pinned.has(p.id) && !preexisting.has(p.id)).map((p) => `${p.name} ${p.id}`), { timeout: 5000 }).toEqual([]);
}

describe("crash safety", () => {
  it("SIGKILL before every step of a revision, then a restart: converged, no orphans, data intact, the datapath never broken", async (ctx) => {
    needs(ctx, "xdpLinkUpdate", "tcxLinkUpdate");
    const caller = await getppidCaller(1000);
    const r = await rig(caller.pid);
    const { lab, chainLab, root, dir, tgid2 } = r;
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
    const stepCounts: string[] = [];
    const flows = podFlows(lab);
    let chainTraffic: Awaited<ReturnType<typeof runTraffic>> | undefined;
    let done = false;
    const chainRun = runTraffic(chainLab, { flows: CHAIN_FLOWS, pps: 4_000, count: 2_000_000, stopWhenDuringEnds: true, during: async () => { while (!done) await sleep(20); } }).then((t) => (chainTraffic = t));
    const traffic = await runTraffic(lab, {
      flows,
      pps: 8_000,
      count: 2_000_000, // more than the loop needs: sending stops when it is done
      stopWhenDuringEnds: true,
      during: async () => {
        try {
          for (let k = 0; ; k++) {
            writeRepo(dir, revision(lab, chainLab, 2, tgid2));
            const killed = r.cli([], { BPFOPS_KILL_BEFORE_STEP: String(k) });
            if (killed.status === 0) break; // k is past the last step: the run completed
            expect(killed.signal, String(killed.stderr)).toBe("SIGKILL");
            killedAt.push(k);
            const counts = openPinnedMap(`${layout.objectMapsDir(root, "counter")}/tcx_counts`);
            const seen = readPerCpuU64(counts, 1) + readPerCpuU64(counts, 2);
            counts.close();
            r.ok(r.cli()); // the restart converges
            stepCounts.push(`${k}:${seen}`);
            await checkConverged(r, 2, `after a kill before step ${k}`);
            writeRepo(dir, revision(lab, chainLab, 1, tgid2));
            r.ok(r.cli());
          }
        } finally {
          done = true;
        }
      },
    });
    await chainRun;
    await caller.run();
    expect(killedAt.length).toBeGreaterThanOrEqual(20);
    expect(killedAt).toEqual(killedAt.map((_, i) => i));
    await checkNoOrphans(root, preexisting);

    // Map data intact through every kill, switch and migration.
    const rulesAfter = closeAtEnd(openPinnedMap(layout.map(root, "pod-rules")));
    expect(rulesAfter.entries().map((e) => e.value.toString("hex"))).toEqual(rulesData);
    const scratchAfter = closeAtEnd(openPinnedMap(layout.map(root, "scratch")));
    expect(scratchAfter.info().maxEntries).toBe(64); // v2: the last run completed, migrating the entries
    expect(scratchAfter.entries().map((e) => e.value.toString("hex")).sort()).toEqual(Array.from({ length: 10 }, (_, i) => Buffer.alloc(8, i + 1).toString("hex")).sort());

    // The hooks were never empty: nothing legitimate lost, no packet of death through, tcx saw all.
    const death = flows.filter((f) => f.name.startsWith("death")).map((f) => f.name);
    const legit = flows.filter((f) => !f.name.startsWith("death")).map((f) => f.name);
    expect(traffic.socketDrops).toBe(0);
    expect(sum(traffic.received, legit)).toBe(sum(traffic.sent, legit));
    expect(sum(traffic.received, death)).toBe(0);
    const counts = closeAtEnd(openPinnedMap(`${layout.objectMapsDir(root, "counter")}/tcx_counts`));
    expect(readPerCpuU64(counts, 1) + readPerCpuU64(counts, 2), stepCounts.join(" ")).toBe(BigInt(sum(traffic.received)));
    // The chain was never broken (its dispatcher drops what falls through), and both stages saw every packet.
    expect(sum(chainTraffic!.received)).toBe(sum(chainTraffic!.sent));
    const stats = closeAtEnd(openPinnedMap(layout.map(root, "stage-stats")));
    expect(stageCounts(stats)).toEqual([BigInt(sum(chainTraffic!.received)), BigInt(sum(chainTraffic!.received))]);
    // The tracepoint program of the last revision counted the caller's getppid calls in its pinned map.
    const tp = closeAtEnd(openPinnedMap(`${layout.objectMapsDir(root, "getppid")}/tp_counts`));
    expect(tp.lookup(ruleKey(0))!.readBigUInt64LE(0)).toBe(1000n);
  }, 400_000);

  it("SIGKILL at 60 random moments of an apply: every restart converges, with the datapath running", async (ctx) => {
    needs(ctx, "xdpLinkUpdate", "tcxLinkUpdate");
    const r = await rig();
    const preexisting = new Set(listPrograms().map((p) => p.id));
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    let done = false;
    const chainRun = runTraffic(r.chainLab, { flows: CHAIN_FLOWS, pps: 4_000, count: 4_000_000, stopWhenDuringEnds: true, during: async () => { while (!done) await sleep(20); } });
    const outcomes = { killed: 0, finished: 0 };
    try {
      for (let trial = 0; trial < 60; trial++) {
        const v = (trial % 2 ? 1 : 2) as 1 | 2;
        writeRepo(r.dir, revision(r.lab, r.chainLab, v, r.tgid2));
        // The child says when it starts executing; the kill lands somewhere in the next 40 ms.
        const child = spawn(process.execPath, ["bin/bpfops.cjs", "reconcile", "--path", r.dir, "--bpffs", r.root, "--cache", `${r.dir}/.cache`], { env: { ...process.env, BPFOPS_ANNOUNCE_EXECUTE: "1" }, stdio: ["ignore", "ignore", "pipe"] });
        const exit = new Promise<{ code: number | null; signal: string | null }>((res) => child.on("exit", (code, signal) => res({ code, signal })));
        child.stderr.on("data", (d: Buffer) => {
          if (d.toString().includes("bpfops: executing")) setTimeout(() => child.kill("SIGKILL"), random() * 40);
        });
        const e = await exit;
        if (e.signal === "SIGKILL") outcomes.killed++;
        else {
          expect(e.code).toBe(0);
          outcomes.finished++;
        }
        r.ok(r.cli());
        await checkConverged(r, v, `after trial ${trial}`);
      }
    } finally {
      done = true;
    }
    const chain = await chainRun;
    expect(outcomes.killed).toBeGreaterThanOrEqual(30);
    expect(sum(chain.received)).toBe(sum(chain.sent));
    await checkNoOrphans(r.root, preexisting);
  }, 400_000);
});
