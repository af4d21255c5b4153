// bench/swap: how long an atomic swap takes per strategy (XDP link, tcx link, prog-array slot)
// and what it loses under load, beside a detach-then-attach baseline; then load+verify time per
// object in bpf/ beside `bpftool prog loadall` of the same object. Prints figures; asserts nothing.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createLab } from "../reconciler/lab/netlab.ts";
import { bpfObject, chainSlotTarget, podFilterTarget, podFlows, swapUnderTraffic, tcxCounterTarget, type SwapResult } from "../reconciler/lab/drills.ts";
import { runTraffic, sum } from "../reconciler/lab/traffic.ts";
import { attachXdpLink } from "../reconciler/kernel/attach.ts";
import { ensureBpffsDir, removePinTree } from "../reconciler/kernel/pins.ts";
import { loadObject, type ObjectFile } from "../reconciler/kernel/object.ts";

const PPS = Number(process.env.BENCH_PPS ?? 60_000);
const SWAPS = Number(process.env.BENCH_SWAPS ?? 200);
const root = `/sys/fs/bpf/bpfops-bench-${process.pid}`;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}
const fmt = (ns: number) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(1)} µs`);

function row(name: string, r: SwapResult, extra: string): void {
  const lost = sum(r.traffic.sent) - sum(r.traffic.received);
  console.log(
    `  ${name.padEnd(26)} median ${fmt(quantile(r.swapNs, 0.5)).padStart(9)}  p99 ${fmt(quantile(r.swapNs, 0.99)).padStart(9)}  swaps ${r.swapNs.length}  packets ${sum(r.traffic.sent)}  ${extra}  not delivered ${lost}`,
  );
}

async function swaps(): Promise<void> {
  console.log(`swap calls under load (${PPS} pps of UDP through a veth, ${SWAPS} swaps spread over the stream)`);
  const count = Math.max(PPS * 3, SWAPS * 1500);
  const lab = createLab({ prefix: "bpfops-bench" });
  try {
    const pin = (n: string) => (ensureBpffsDir(`${root}/${n}`), `${root}/${n}`);
    {
      const t = await podFilterTarget(lab, pin("xdp"));
      const flows = podFlows(lab);
      const r = await swapUnderTraffic(lab, t, { flows, pps: PPS, count, swaps: SWAPS });
      const death = flows.filter((f) => f.name.startsWith("death")).map((f) => f.name);
      const dropped = t.stats().reduce((a, s) => a + s.dropped, 0n);
      row("XDP link update", r, `death dropped ${dropped}/${sum(r.traffic.sent, death)}`);
      t.close();
    }
    {
      const t = await tcxCounterTarget(lab, pin("tcx"));
      const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("bench") }];
      const r = await swapUnderTraffic(lab, t, { flows, pps: PPS, count, swaps: SWAPS });
      row("tcx link update", r, `counted by tcx ${t.counted()}`);
      t.close();
    }
    {
      const t = await chainSlotTarget(lab, pin("chain"));
      const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("bench") }];
      const r = await swapUnderTraffic(lab, t, { flows, pps: PPS, count, swaps: SWAPS });
      row("prog-array slot update", r, `fell through empty slot ${t.fellThrough()}`);
      t.close();
    }
    // Baseline: what unload-and-reload managers do, detach the old link and attach a new one.
    {
      const t = await podFilterTarget(lab, pin("baseline"));
      t.link.close();
      const hook = { ifname: lab.dst.ifname, netns: lab.dst.netns };
      let link = attachXdpLink(t.programs[0], hook);
      const flows = podFlows(lab);
      const r = await swapUnderTraffic(lab, { what: "detach+attach", swap: (i) => { link.close(); link = attachXdpLink(t.programs[(i + 1) % 2]!, hook); }, close: () => undefined }, { flows, pps: PPS, count, swaps: SWAPS });
      const death = flows.filter((f) => f.name.startsWith("death")).map((f) => f.name);
      row("baseline: detach + attach", r, `death got through ${sum(r.traffic.received, death)}/${sum(r.traffic.sent, death)}`);
      link.close();
      t.close();
    }
    // The same stream with no swaps: how much the lab itself loses, so the rows above can be read.
    const idle = await runTraffic(lab, { flows: [{ name: "udp", dport: 5000, payload: Buffer.from("bench") }], pps: PPS, count });
    console.log(`  ${"no swaps (lab noise)".padEnd(26)} packets ${sum(idle.sent)}  not delivered ${sum(idle.sent) - sum(idle.received)}  socket drops ${idle.socketDrops}`);
  } finally {
    lab.destroy();
  }
  console.log(
    "  The XDP figure is dominated by one RCU grace period: the kernel waits for readers of the old\n" +
      "  program before BPF_LINK_UPDATE returns, while tcx and prog-array updates publish a pointer and\n" +
      "  return at once. In every case the hook runs old or new, never nothing: 'not delivered' counts\n" +
      "  intended drops (packets of death) plus losses, and the baseline shows the gap a detach opens.",
  );
}

// Objects that need the loader's help to load (as an operator's manifest would give it).
const CONFIGURE: Record<string, (o: ObjectFile) => void> = {
  "t_max_zero.o": (o) => o.setMaxEntries("proto_counts", 256).setProgramType("proto_count", "xdp"),
};

/**
 * Times `bpftool prog loadall` n times, each a whole process started from a shell, inside a
 * private mount namespace with its own bpffs: bpftool pins LIBBPF_PIN_BY_NAME maps under
 * /sys/fs/bpf itself, and those must neither touch nor reuse the host's pins.
 */
function bpftoolLoadall(obj: string, n: number): [number[], string] {
  const script = `mount -t bpf bpf /sys/fs/bpf || exit 3
for i in $(seq ${n}); do
  t0=$(date +%s%N); bpftool prog loadall "$0" /sys/fs/bpf/p$i >/dev/null 2>&1; rc=$?; t1=$(date +%s%N)
  echo $((t1 - t0)); [ $rc = 0 ] || { echo fail; exit 0; }
done`;
  const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-c", script, obj], { encoding: "utf8" });
  const lines = r.stdout.trim().split("\n");
  const times = lines.filter((l) => /^\d+$/.test(l)).map(Number);
  return [times, r.status !== 0 ? `error ${r.status}` : lines.includes("fail") ? "rejected" : "ok"];
}

async function loads(): Promise<void> {
  const objects = [
    ...readdirSync(bpfObject(".")).filter((f) => f.endsWith(".o")),
    ...readdirSync(bpfObject("test")).filter((f) => f.endsWith(".o")).map((f) => `test/${f}`),
  ];
  const N = 20;
  console.log(`\nload + verify, median of ${N} (bpfops: in process, off the main thread; bpftool: a whole \`bpftool prog loadall\` process, fork+exec included)`);
  for (const name of objects) {
    const dir = `${root}/load-${name.replace(/\W/g, "_")}`;
    ensureBpffsDir(dir);
    const ours: number[] = [];
    let verdict = "ok";
    for (let i = 0; i < N; i++) {
      const t0 = process.hrtime.bigint();
      try {
        const o = await loadObject(bpfObject(name), { pinRoot: dir }, CONFIGURE[name.split("/").pop()!]);
        ours.push(Number(process.hrtime.bigint() - t0));
        o.close();
      } catch (e) {
        verdict = (e as { code?: string }).code ?? "error";
        break;
      }
    }
    const [theirs, theirVerdict] = bpftoolLoadall(bpfObject(name), N);
    removePinTree(dir);
    const a = verdict === "ok" ? fmt(quantile(ours, 0.5)) : verdict;
    const b = theirVerdict === "ok" ? fmt(quantile(theirs, 0.5)) : `${theirVerdict} after ${fmt(quantile(theirs, 0.5))}`;
    console.log(`  ${name.padEnd(26)} bpfops ${a.padStart(10)}   bpftool ${b}`);
  }
}

// Cleans up on every way out, also a crash or a closed pipe (`| head`), where finally never runs;
// the lab removes its own namespaces at exit.
process.on("exit", () => removePinTree(root));
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

ensureBpffsDir(root);
await swaps();
await sleep(10);
await loads();
