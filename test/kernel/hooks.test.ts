// Hooks beyond one program per interface: several tcx programs on one hook in a declared order,
// each placed by its manifest, re-placed when the order changes, and pruned.
import { describe, expect, it } from "vitest";
import { runTraffic, sum } from "../../reconciler/lab/traffic.ts";
import { queryTcxHook } from "../../reconciler/kernel/observe.ts";
import { openPinnedMap } from "../../reconciler/kernel/pins.ts";
import { layout } from "../../reconciler/core/layout.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { needs, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo, HDR, tempRepo, writeRepo } from "./repos.ts";

describe("tcx order", () => {
  /** Programs "one" (position_id oneId) and "two" (2) on dst0 ingress; `order` is one's order field. */
  const files = (lab: Lab, order: string, oneId = 1) => ({
    "order.yaml": `${HDR}kind: Map
metadata: { name: order-seen }
spec: { type: array, keySize: 4, valueSize: 8, maxEntries: 16 }
---
${HDR}kind: Program
metadata: { name: one }
spec: { object: objs/t_tcx_order.o, program: tcx_order, globals: { position_id: ${oneId} }, maps: { order_seen: { bind: order-seen } } }
---
${HDR}kind: Program
metadata: { name: two }
spec: { object: objs/t_tcx_order.o, program: tcx_order, globals: { position_id: 2 }, maps: { order_seen: { bind: order-seen } } }
---
${HDR}kind: Attachment
metadata: { name: first }
spec: { program: one, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress }, order: ${order} }
---
${HDR}kind: Attachment
metadata: { name: second }
spec: { program: two, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }
`,
  });
  /** [id 1 ran first, id 1 ran after another, id 2 first, id 2 after, id 3 first, id 3 after] */
  const seen = (root: string) => {
    const m = openPinnedMap(layout.map(root, "order-seen"));
    try {
      return [2, 3, 4, 5, 6, 7].map((k) => Number(m.lookup(Buffer.from([k, 0, 0, 0]))!.readBigUInt64LE(0)));
    } finally {
      m.close();
    }
  };
  const delta = (a: number[], b: number[]) => b.map((x, i) => x - a[i]!);
  const send = async (lab: Lab) => sum((await runTraffic(lab, { flows: [{ name: "udp", dport: 5000, payload: Buffer.from("order") }], pps: 2000, count: 400 })).received);

  it("places an Attachment before or after another on the same tcx hook, and moves it when the order changes", async (ctx) => {
    needs(ctx, "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    // "first" sorts before "second" by name: placing it before "second" needs "second" attached first.
    const dir = tempRepo(files(lab, "{ before: second }"));
    const r1 = await applyRepo(dir, root);
    expect(r1.plan.actions.filter((a) => a.kind === "Attachment").map((a) => [a.name, a.op])).toEqual([["second", "attach"], ["first", "attach"]]);
    let before = seen(root);
    let got = await send(lab);
    expect(got).toBeGreaterThan(0);
    expect(delta(before, seen(root))).toEqual([got, 0, 0, got, 0, 0]);
    const progs = () => queryTcxHook({ ifname: "dst0", netns: lab.dst.netns, direction: "ingress" }).progIds.length;
    expect(progs()).toBe(2);

    // The order turns round, the program the same: its link is made again after "second".
    writeRepo(dir, files(lab, "{ after: second }"));
    const r2 = await applyRepo(dir, root);
    expect(r2.plan.actions.find((a) => a.name === "first" && a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "re-place", reason: expect.stringMatching(/runs before Attachment\/second/) });
    before = seen(root);
    got = await send(lab);
    expect(delta(before, seen(root))).toEqual([0, got, got, 0, 0, 0]);
    expect(progs()).toBe(2);
    // As it is: nothing to do.
    expect((await applyRepo(dir, root)).plan.changes).toBe(false);

    // Back before "second" with a new version: the new one goes in its place before the old link goes.
    writeRepo(dir, files(lab, "{ before: second }", 3));
    const r3 = await applyRepo(dir, root);
    expect(r3.plan.actions.find((a) => a.name === "first" && a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "make-before-break" });
    before = seen(root);
    got = await send(lab);
    expect(delta(before, seen(root))).toEqual([0, 0, 0, got, got, 0]);
    expect(progs()).toBe(2);
    // A new version in the right place is a link update, which keeps the place.
    writeRepo(dir, files(lab, "{ before: second }", 1));
    expect((await applyRepo(dir, root)).plan.actions.find((a) => a.name === "first" && a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "link-update" });
    before = seen(root);
    got = await send(lab);
    expect(delta(before, seen(root))).toEqual([got, 0, 0, got, 0, 0]);

    // Pruned: the Attachments (and programs) go; the map stays named.
    writeRepo(dir, { "order.yaml": files(lab, "")["order.yaml"].split("---")[0]! });
    await applyRepo(dir, root);
    expect(progs()).toBe(0);
  });
});
