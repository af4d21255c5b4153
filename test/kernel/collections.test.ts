// Collections: several programs of one object loaded as one unit, as a libbpf skeleton loads
// them: a prog-array whose .values name sibling programs is filled, the programs share the
// object's globals, each goes on its own hook as <Program>/<program>, and versions swap together.
import { describe, expect, it } from "vitest";
import { runTraffic, sum } from "../../reconciler/lab/traffic.ts";
import { listPins, openPinnedMap } from "../../reconciler/kernel/pins.ts";
import { layout } from "../../reconciler/core/layout.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { needs, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo, HDR, tempRepo, writeRepo } from "./repos.ts";

/** The collection on dst0: its XDP entry (which tail-calls its two stages) and its tc counter. */
function files(lab: Lab, version: number): Record<string, string> {
  return {
    "c.yaml": `${HDR}kind: Program
metadata: { name: coll }
spec:
  object: objs/t_collection.o
  programs: [entry, stage_one, stage_two, tc_count]
  globals: { version: ${version} }
  maps: { .bss: { pin: true }, inner: { pin: true } }
---
${HDR}kind: Attachment
metadata: { name: coll-xdp }
spec: { program: coll/entry, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }
---
${HDR}kind: Attachment
metadata: { name: coll-tc }
spec: { program: coll/tc_count, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }
`,
  };
}

/** The collection's .bss, one set of counters all its programs share: [entry, one, two, tc] of a version. */
function seen(root: string, version: number): number[] {
  const m = openPinnedMap(`${layout.objectMapsDir(root, "coll")}/bss`);
  try {
    const bss = m.lookup(Buffer.alloc(4))!;
    return [0, 1, 2, 3].map((array) => Number(bss.readBigUInt64LE((array * 4 + (version % 4)) * 8)));
  } finally {
    m.close();
  }
}

describe("collections", () => {
  it("loads the programs of one object as one unit, fills a prog-array with its siblings, shares globals, and swaps the whole collection in one commit", async (ctx) => {
    needs(ctx, "xdpLink", "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(files(lab, 1));
    const first = await applyRepo(dir, root);
    expect(first.plan.actions.filter((a) => a.kind === "Program").map((a) => [a.op, a.reason])).toEqual([["load", expect.stringMatching(/new collection of 4 programs \(entry, stage_one, stage_two, tc_count\)/)]]);
    const flows = [{ name: "udp", dport: 5000, payload: Buffer.from("through the collection") }];
    let r = await runTraffic(lab, { flows, pps: 2000, count: 400 });
    // The entry drops what an empty slot leaves it: all received means both tail calls found their sibling.
    expect(r.received.udp).toBe(r.sent.udp);
    expect(seen(root, 1)).toEqual([400, 400, 400, 400]);
    // The entry counted through its map-in-map too: libbpf filled the slot with the sibling map.
    const inner = () => {
      const m = openPinnedMap(`${layout.objectMapsDir(root, "coll")}/inner`);
      try {
        return Number(m.lookup(Buffer.alloc(4))!.readBigUInt64LE(0));
      } finally {
        m.close();
      }
    };
    expect(inner()).toBe(400);

    // Version 2: one load, both hooks move in the commit.
    writeRepo(dir, files(lab, 2));
    const second = await applyRepo(dir, root);
    expect(second.plan.actions.map((a) => `${a.op} ${a.kind}/${a.name}${"strategy" in a && a.strategy ? ` ${a.strategy}` : ""}`)).toEqual([
      "load Program/coll",
      "swap Attachment/coll-tc link-update",
      "swap Attachment/coll-xdp link-update",
      "prune Program/coll",
    ]);
    r = await runTraffic(lab, { flows, pps: 2000, count: 400 });
    expect(sum(r.received)).toBe(400);
    expect(seen(root, 2)).toEqual([400, 400, 400, 400]);
    expect(seen(root, 1)).toEqual([400, 400, 400, 400]);
    expect(inner()).toBe(800); // the pinned inner map carried over, the new version's outer holds it too
    // One version pinned: its entry, its other programs beside it, and its own prog-array.
    const versionPins = listPins(root).map((p) => p.path.slice(root.length)).filter((p) => p.startsWith("/programs/"));
    expect(versionPins.map((p) => p.replace(/\/[0-9a-f]{16}/, "/<digest>"))).toEqual(["/programs/coll/<digest>", "/programs/coll/<digest>#stages", "/programs/coll/<digest>@stage_one", "/programs/coll/<digest>@stage_two", "/programs/coll/<digest>@tc_count"]);
    // As it is: nothing to do.
    expect((await applyRepo(dir, root)).plan.changes).toBe(false);

    writeRepo(dir, { "k.yaml": `${HDR}kind: Map\nmetadata: { name: keep }\nspec: { type: array, keySize: 4, valueSize: 4, maxEntries: 1 }\n` });
    await applyRepo(dir, root);
    expect(listPins(root).filter((p) => p.path.includes("/programs/") || p.path.includes("/links/"))).toEqual([]);
  });
});
