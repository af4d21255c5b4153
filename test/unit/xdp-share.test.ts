// Which XDP Attachments share a hook and in what order (a table of plain data), and what the
// sharing makes of them: a dispatcher Chain, its prog-array, each program told its slot.
import { describe, expect, it } from "vitest";
import { shareXdpHooks, xdpGroups } from "../../reconciler/core/xdp-share.ts";
import type { DesiredAttachment, DesiredProgram } from "../../reconciler/core/desired.ts";
import { programDigest } from "../../reconciler/core/desired.ts";

const at = (name: string, order?: [position: "before" | "after", anchor: string], netns = "ns"): DesiredAttachment => ({
  name,
  source: "m.yaml",
  program: `p-${name}`,
  hook: { type: "xdp", netns, interfaces: ["eth0"], mode: "auto" },
  takeover: false,
  ...(order ? { order: { position: order[0], attachment: order[1] } } : {}),
});

describe("xdpGroups", () => {
  it.each<[string, DesiredAttachment[], string[][]]>([
    ["no order: nothing shared", [at("a"), at("b")], []],
    ["a before b", [at("a", ["before", "b"]), at("b")], [["a", "b"]]],
    ["a after b", [at("a", ["after", "b"]), at("b")], [["b", "a"]]],
    ["a chain of three: c after b, b after a", [at("c", ["after", "b"]), at("b", ["after", "a"]), at("a")], [["a", "b", "c"]]],
    ["two anchored on one: b and c after a, ties by name", [at("c", ["after", "a"]), at("b", ["after", "a"]), at("a")], [["a", "b", "c"]]],
    ["two groups", [at("a", ["before", "b"]), at("b"), at("x", ["after", "y"]), at("y")], [["a", "b"], ["y", "x"]]],
  ])("%s", (_, attachments, want) => {
    expect(xdpGroups(attachments).map((g) => g.map((a) => a.name))).toEqual(want);
  });
});

describe("shareXdpHooks", () => {
  const prog = (name: string): DesiredProgram => ({ name, source: "m.yaml", objectPath: "x.o", objectDigest: "0".repeat(64), program: "f", type: "xdp", globals: {}, maps: {}, digest: "d".repeat(64) });
  const dispatcher = { ok: true as const, path: "bpfops:xdp_dispatcher.o", digest: "e".repeat(64), summary: { programs: [], maps: [{ name: "xdp_chain_stats", type: 6, keySize: 4, valueSize: 8, maxEntries: 2, flags: 0, internal: false, pinned: true }], globals: [] } } as never;

  it("makes a chain of bpfops's dispatcher with the programs as stages in order, each told its slot and bound to the prog-array", () => {
    const s = shareXdpHooks({ maps: [], programs: [prog("p-a"), prog("p-b")], attachments: [at("a", ["after", "b"]), at("b")], chains: [] }, dispatcher, programDigest);
    expect(s.attachments).toEqual([]);
    const slots = s.maps[0]!.name;
    expect(slots).toMatch(/^bpfops-xdp-a-[0-9a-f]{8}$/);
    expect(s.chains).toMatchObject([{ name: "bpfops-xdp-a", root: "bpfops-xdp-a", progArray: slots, stages: ["p-b", "p-a"] }]);
    expect(s.maps).toMatchObject([{ def: { type: "prog_array", maxEntries: 8 } }]);
    const byName = new Map(s.programs.map((p) => [p.name, p]));
    expect(byName.get("bpfops-xdp-a")).toMatchObject({ objectPath: "bpfops:xdp_dispatcher.o", maps: { xdp_chain: { bind: slots } } });
    expect([byName.get("p-b")!.globals.bpfops_xdp_slot, byName.get("p-a")!.globals.bpfops_xdp_slot]).toEqual(["00000000", "01000000"]);
    expect(byName.get("p-a")!.maps.bpfops_xdp_next).toMatchObject({ bind: slots });
    // Another order is another prog-array (switched to by the dispatcher in one update).
    const other = shareXdpHooks({ maps: [], programs: [prog("p-a"), prog("p-b")], attachments: [at("a", ["before", "b"]), at("b")], chains: [] }, dispatcher, programDigest);
    expect(other.maps[0]!.name).not.toBe(slots);
    // A program's place is part of its version.
    expect(byName.get("p-a")!.digest).not.toBe(prog("p-a").digest);
  });
});
