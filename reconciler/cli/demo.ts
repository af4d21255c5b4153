// `bpfops demo` (npm start): the packet-of-death filter in a throwaway lab, under mixed
// traffic, hot-swapped to a new version and given an emergency rule, with per-phase counts.
import { createLab, type Lab } from "../lab/netlab.ts";
import { podFilterTarget, podFlows, swapUnderTraffic } from "../lab/drills.ts";
import { runTraffic, sum, type Flow, type TrafficReport } from "../lab/traffic.ts";
import { ensureBpffsDir, removePinTree } from "../kernel/pins.ts";
import { ruleKey, encodePodRule, type PodStat } from "../kernel/pod-rules.ts";
import { queryXdpHook } from "../kernel/observe.ts";

const isDeath = (name: string) => name.startsWith("death");

function table(title: string, flows: Flow[], r: TrafficReport, dropped: bigint): void {
  const legit = flows.filter((f) => !isDeath(f.name)).map((f) => f.name);
  const death = flows.filter((f) => isDeath(f.name)).map((f) => f.name);
  const lost = sum(r.sent, legit) - sum(r.received, legit);
  console.log(`\n${title}`);
  console.log(`  ${"flow".padEnd(16)}${"sent".padStart(9)}${"received".padStart(10)}`);
  for (const f of flows) console.log(`  ${f.name.padEnd(16)}${String(r.sent[f.name] ?? 0).padStart(9)}${String(r.received[f.name] ?? 0).padStart(10)}`);
  console.log(
    `  sent ${sum(r.sent)}  dropped ${dropped} (packets of death: ${sum(r.sent, death)}, got through: ${sum(r.received, death)})  passed ${sum(r.received, legit)}  lost ${lost}` +
      `  (${Math.round(sum(r.sent) / r.seconds)} pps)`,
  );
}

function droppedSince(before: PodStat[], after: PodStat[]): bigint {
  return after.reduce((a, s, i) => a + s.dropped - (before[i]?.dropped ?? 0n), 0n);
}

export async function runDemo(opts: { pps: number; seconds: number }): Promise<void> {
  const count = Math.round(opts.pps * opts.seconds);
  const pinRoot = `/sys/fs/bpf/bpfops-demo-${process.pid}`;
  let lab: Lab | undefined;
  const cleanup = () => {
    lab?.destroy();
    removePinTree(pinRoot);
  };
  const onSignal = () => {
    cleanup();
    process.exit(130);
  };
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  try {
    lab = createLab({ prefix: "bpfops-demo" });
    ensureBpffsDir(pinRoot);
    console.log(`lab ${lab.id}: ${lab.src.netns} (${lab.src.addr}, bad host ${lab.src.extraAddrs[0]}) --veth--> ${lab.dst.netns} (${lab.dst.addr})`);
    const filter = await podFilterTarget(lab, pinRoot);
    const [v1, v2] = filter.programs;
    const hook = { ifname: lab.dst.ifname, netns: lab.dst.netns };
    console.log(`packet-of-death filter v1 (prog id ${v1.id}) attached to ${lab.dst.ifname} as XDP link ${filter.link.info().id} (${queryXdpHook(hook).mode} mode), 4 rules in pinned map ${pinRoot}/pod_rules`);
    const flows = podFlows(lab);

    let before = filter.stats();
    const r1 = await runTraffic(lab, { flows, pps: opts.pps, count });
    table("1. filter v1 under mixed traffic", flows, r1, droppedSince(before, filter.stats()));

    before = filter.stats();
    const { traffic: r2, swapNs } = await swapUnderTraffic(lab, filter, { flows, pps: opts.pps, count, swaps: 1 });
    table(`2. hot swap v1 -> v2 (prog id ${v2.id}) mid-stream: one BPF_LINK_UPDATE, ${(swapNs[0]! / 1e6).toFixed(2)} ms`, flows, r2, droppedSince(before, filter.stats()));
    console.log(`  hook now runs prog id ${queryXdpHook(hook).progId}`);

    // An emergency rule for a new packet of death goes in with one map update, no reload.
    const newDeath: Flow = { name: "death-new", dport: 7777, payload: Buffer.from("new exploit") };
    const flows3 = [...flows, newDeath];
    before = filter.stats();
    const r3 = await runTraffic(lab, {
      flows: flows3,
      pps: opts.pps,
      count,
      during: async () => {
        await new Promise((r) => setTimeout(r, (opts.seconds * 1000) / 2));
        filter.rules.update(ruleKey(4), encodePodRule({ action: "drop", protocol: "udp", dport: 7777 }));
      },
    });
    table("3. emergency rule (drop udp/7777) added mid-stream with one map update", flows3, r3, droppedSince(before, filter.stats()));
    console.log("  death-new packets got through only until the rule landed; nothing legitimate was lost");
    filter.close();
  } finally {
    cleanup();
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
  }
  console.log("\nlab removed: namespaces, links, programs and pins are gone");
}
