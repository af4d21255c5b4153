// Zero-gap swaps under real traffic: the packet-of-death filter drops exactly what its rules
// say, and 100 swaps of an XDP link, a tcx link and a tail-call slot lose no packet; nor do 100
// swaps on the legacy paths (netlink XDP, TC cls_bpf, cgroup BPF_PROG_ATTACH).
import { describe, expect, it } from "vitest";
import { cgroupProgTarget, chainSlotTarget, podFilterTarget, podFlows, podRules, swapUnderTraffic, tcFilterTarget, tcxCounterTarget, xdpNetlinkTarget } from "../../reconciler/lab/drills.ts";
import { runTraffic, sum } from "../../reconciler/lab/traffic.ts";
import { POD_STAT_DEFAULT } from "../../reconciler/lab/pod-rules.ts";
import { closeAtEnd, needs, tempCgroup, tempLab, tempPinRoot } from "./harness.ts";

const PPS = 60_000;
const COUNT = 120_000;
const SWAPS = 100;

describe("packet-of-death filter", () => {
  it("drops exactly the matching packets; receiver and counter maps agree", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const filter = closeAtEnd(await podFilterTarget(lab, tempPinRoot()));
    const flows = podFlows(lab);
    const r = await runTraffic(lab, { flows, pps: 30_000, count: 30_000 });
    expect(r.socketDrops).toBe(0);
    for (const f of flows) expect(r.received[f.name], f.name).toBe(f.name.startsWith("death") ? 0 : r.sent[f.name]);
    expect(r.received.unknown).toBe(0);
    const stats = filter.stats();
    podRules(lab).forEach((rule, i) => {
      const want = BigInt(r.sent[rule.flow]!);
      expect(stats[i], `rule ${i} (${rule.flow})`).toEqual(rule.action === "drop" ? { dropped: want, passed: 0n } : { dropped: 0n, passed: want });
    });
    expect(stats[POD_STAT_DEFAULT]).toEqual({ dropped: 0n, passed: BigInt(r.sent.good! + r.sent["good-5001"]!) });
  });
});

describe("swaps under traffic lose nothing", () => {
  // The link paths, and the legacy paths of kernels without links for the hook, in the same drill.
  it.for([
    ["XDP link update", "xdpLinkUpdate", podFilterTarget],
    ["netlink XDP with XDP_FLAGS_REPLACE (legacy path)", null, xdpNetlinkTarget],
  ] as const)(`%s between two filter versions, ${SWAPS} times`, async ([, feature, target], ctx) => {
    if (feature) needs(ctx, feature);
    const lab = tempLab();
    const filter = closeAtEnd(await target(lab, tempPinRoot()));
    const flows = podFlows(lab);
    const { traffic: r, swapNs } = await swapUnderTraffic(lab, filter, { flows, pps: PPS, count: COUNT, swaps: SWAPS });
    expect(swapNs).toHaveLength(SWAPS);
    expect(sum(r.sendFailed)).toBe(0);
    expect(r.socketDrops).toBe(0);
    const death = flows.filter((f) => f.name.startsWith("death")).map((f) => f.name);
    const legit = flows.filter((f) => !f.name.startsWith("death")).map((f) => f.name);
    const dropped = filter.stats().reduce((a, s) => a + s.dropped, 0n);
    // No legitimate packet lost, every packet of death dropped, received + dropped = sent.
    expect(sum(r.received, legit)).toBe(sum(r.sent, legit));
    expect(sum(r.received, death)).toBe(0);
    expect(dropped).toBe(BigInt(sum(r.sent, death)));
    expect(sum(r.received) + Number(dropped)).toBe(COUNT);
    // Both versions really ran (a swap between identical programs would prove nothing), and together they saw every packet.
    const [v1, v2] = filter.versions();
    expect([v1 > 0n, v2 > 0n]).toEqual([true, true]);
    expect(v1 + v2).toBe(BigInt(COUNT));
  });

  it.for([
    ["tcx link update", "tcxLinkUpdate", tcxCounterTarget],
    ["TC cls_bpf replaced in place with NLM_F_REPLACE (legacy path)", null, tcFilterTarget],
  ] as const)(`%s between two counter versions, ${SWAPS} times`, async ([, feature, target], ctx) => {
    if (feature) needs(ctx, feature);
    const lab = tempLab();
    const counter = closeAtEnd(await target(lab, tempPinRoot()));
    const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("counted by tc") }];
    const { traffic: r } = await swapUnderTraffic(lab, counter, { flows, pps: PPS, count: COUNT, swaps: SWAPS });
    expect(r.socketDrops).toBe(0);
    expect(r.received.udp).toBe(COUNT);
    // Every packet went through one version or the other: the hook was never empty.
    expect(counter.counted()).toBe(BigInt(COUNT));
    expect(counter.versions().map((n) => n > 0n)).toEqual([true, true]);
  });

  it(`cgroup BPF_PROG_ATTACH with BPF_F_REPLACE (legacy path) between two counter versions, ${SWAPS} times`, async () => {
    const lab = tempLab();
    const cg = tempCgroup();
    const counter = closeAtEnd(await cgroupProgTarget(cg, tempPinRoot()));
    const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("from the cgroup") }];
    const { traffic: r } = await swapUnderTraffic(lab, counter, { flows, pps: PPS / 3, count: COUNT / 3, swaps: SWAPS, senderCgroup: cg });
    expect(r.received.udp).toBe(COUNT / 3);
    expect(counter.counted()).toBe(BigInt(COUNT / 3)); // every packet the cgroup sent went through one version or the other
    expect(counter.versions().map((n) => n > 0n)).toEqual([true, true]);
  });

  it(`prog-array slot update between two stage versions, ${SWAPS} times`, async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const chain = closeAtEnd(await chainSlotTarget(lab, tempPinRoot()));
    const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("through the chain") }];
    const { traffic: r } = await swapUnderTraffic(lab, chain, { flows, pps: PPS, count: COUNT, swaps: SWAPS });
    expect(r.socketDrops).toBe(0);
    expect(r.received.udp).toBe(COUNT);
    expect(chain.fellThrough()).toBe(0n); // the slot was never empty
    expect(chain.staged()).toBe(chain.entered());
    expect(chain.entered()).toBe(BigInt(COUNT));
    expect(chain.versions().map((n) => n > 0n)).toEqual([true, true]);
  });
});
