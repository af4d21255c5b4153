// bench/datapath: what a packet costs in each program bpfops runs, in ns per packet through
// BPF_PROG_TEST_RUN (the kernel runs the program `repeat` times on one frame and averages).
// Prints figures beside an XDP program that only returns, measured in the same run; asserts nothing.
import { setTimeout as sleep } from "node:timers/promises";
import { bpfObject } from "../reconciler/lab/drills.ts";
import { writePodRules, type PodRule } from "../reconciler/lab/pod-rules.ts";
import { ensureBpffsDir, removePinTree } from "../reconciler/kernel/pins.ts";
import { loadObject } from "../reconciler/kernel/object.ts";
import type { ProgramHandle } from "../reconciler/kernel/handles.ts";
import { udpFrame, XDP } from "../reconciler/lab/frames.ts";

const REPEAT = Number(process.env.BENCH_REPEAT ?? 1_000_000);
// Each figure is the median of ROUNDS test runs of REPEAT packets: one run can land on a busy CPU.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const root = `/sys/fs/bpf/bpfops-bench-datapath-${process.pid}`;

function nsPerPacket(program: ProgramHandle, frame: Buffer, expect: number): number {
  const runs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = program.testRun(frame, REPEAT);
    if (r.retval !== expect) throw new Error(`${program.name}: verdict ${r.retval}, expected ${expect}: the bench would time the wrong path`);
    runs.push(r.durationNs);
  }
  return runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
}

function row(name: string, ns: number, base: number): void {
  console.log(`  ${name.padEnd(58)} ${ns.toFixed(0).padStart(5)} ns/packet   (+${(ns - base).toFixed(0)} over the floor)`);
}

/**
 * Rules as a packet-of-death list grows: each matches the port and protocol of the legitimate
 * traffic and a payload signature of its own, so every rule reads and compares the payload.
 */
function signatureRules(n: number): PodRule[] {
  return Array.from({ length: n }, (_, i) => ({ action: "drop", protocol: "udp", dport: 5000, pattern: Buffer.from(`sig-${String(i).padStart(4, "0")}`), patternOffset: 0 }));
}

async function main(): Promise<void> {
  console.log(`ns per packet through BPF_PROG_TEST_RUN, repeat ${REPEAT}, median of ${ROUNDS} runs (64-byte-class UDP frames)`);
  const base = await loadObject(bpfObject("bench/xdp_stages_inline.o"), { pinRoot: dir("inline") });
  const floorProg = base.program("xdp_pass");
  const inline = base.program("xdp_stages_inline");
  base.close();
  const legit = udpFrame("10.0.0.1", 5000, Buffer.from("GET /healthz and some more bytes"));
  const floor = nsPerPacket(floorProg, legit, XDP.PASS);
  row("floor: an XDP program that only returns", floor, floor);

  // The packet-of-death filter: a legitimate packet is checked against every rule (the cost a
  // rule adds); a packet of death stops at the rule that matches it, the last one here.
  console.log("\npacket-of-death filter (pod_filter), rules that each read the payload:");
  const pod = await loadObject(bpfObject("pod_filter.o"), { pinRoot: dir("pod") });
  const filter = pod.program("pod_filter");
  const rules = pod.map("pod_rules");
  pod.close();
  for (const n of [1, 16, 64]) {
    const list = signatureRules(n);
    writePodRules(rules, list);
    row(`${n} rule${n > 1 ? "s" : ""}: legitimate packet (checked against all)`, nsPerPacket(filter, legit, XDP.PASS), floor);
    const death = udpFrame("10.0.0.1", 5000, Buffer.concat([list[n - 1]!.pattern!, Buffer.from(" exploit")]));
    row(`${n} rule${n > 1 ? "s" : ""}: packet of death (matches the last rule)`, nsPerPacket(filter, death, XDP.DROP), floor);
  }
  writePodRules(rules, signatureRules(16));
  const alone = nsPerPacket(filter, legit, XDP.PASS);

  // A three-stage tail-call chain (dispatcher -> stage 0 -> 1 -> 2) against the same counters
  // bumped in one program.
  console.log("\ntail-call chain against the same logic in one program:");
  const dispatcherObj = await loadObject(bpfObject("xdp_dispatcher.o"), { pinRoot: dir("chain") });
  const dispatcher = dispatcherObj.program("xdp_dispatcher");
  const chain = dispatcherObj.map("xdp_chain");
  dispatcherObj.close();
  const stages: ProgramHandle[] = [];
  for (const index of [0, 1, 2]) {
    const o = await loadObject(bpfObject("xdp_stage.o"), { pinRoot: dir("chain") }, (x) => x.setGlobal("stage_index", index));
    stages.push(o.program("xdp_stage"));
    o.close();
  }
  stages.forEach((s, i) => chain.setProgramSlot(i, s));
  row("three stages as a chain (3 tail calls)", nsPerPacket(dispatcher, legit, XDP.PASS), floor);
  row("the same counters in one program", nsPerPacket(inline, legit, XDP.PASS), floor);

  // The dispatcher in front of one program (how several programs share an XDP hook) against the
  // program attached alone.
  console.log("\nXDP dispatcher against a single program (pod filter, 16 rules):");
  for (let i = 0; i < 3; i++) chain.setProgramSlot(i, null);
  chain.setProgramSlot(0, filter);
  row("pod filter behind the dispatcher (slot 0)", nsPerPacket(dispatcher, legit, XDP.PASS), floor);
  row("pod filter attached alone", alone, floor);

  for (const h of [floorProg, inline, filter, rules, dispatcher, chain, ...stages]) h.close();
  console.log(
    "\n  The filter looks up all 64 rule slots for a packet no rule matches, enabled or not: with one\n" +
      "  rule a legitimate packet still pays 64 lookups, a packet of death stops at its rule. A tail call\n" +
      "  costs a few ns; per-CPU array lookups in one program are inlined by the verifier and cost ~0.",
  );
}

function dir(name: string): string {
  ensureBpffsDir(`${root}/${name}`);
  return `${root}/${name}`;
}

process.on("exit", () => removePinTree(root));
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));
ensureBpffsDir(root);
await main();
await sleep(0);
