// plan(desired, observed) as a table: plain data in, ordered actions out. No kernel, no root.
import { describe, expect, it } from "vitest";
import { plan } from "../../reconciler/core/plan.ts";
import type { DesiredAttachment, DesiredChain, DesiredMap, DesiredProgram, DesiredState } from "../../reconciler/core/desired.ts";
import type { ObservedState } from "../../reconciler/core/observed.ts";

const D = (c: string) => c.repeat(64);
const prog = (name: string, digest = D("a")): DesiredProgram => ({ name, source: "m.yaml", objectPath: "x.o", objectDigest: D("0"), program: "p", type: "xdp", globals: {}, maps: {}, digest });
const map = (name: string, o: Partial<DesiredMap> = {}): DesiredMap => ({ name, source: "m.yaml", def: { type: "array", keySize: 4, valueSize: 8, maxEntries: 16, flags: 0 }, onChange: "keep", entries: [], overwriteEntries: false, ...o });
const xdp = (name: string, program: string, o: Partial<DesiredAttachment> = {}): DesiredAttachment => ({ name, source: "m.yaml", program, hook: { type: "xdp", netns: "ns", interfaces: ["eth0"], mode: "auto" }, takeover: false, ...o });
const desired = (o: Partial<DesiredState>): DesiredState => ({ maps: [], programs: [], attachments: [], chains: [], ...o });
const observed = (o: Partial<ObservedState>): ObservedState => ({ root: "/r", maps: [], programs: [], links: [], hooks: {}, interfaces: { ns: ["eth0", "eth1", "lo"] }, ...o });
const hook = (progIds: number[], present = true) => ({ hook: { type: "xdp" as const, netns: "ns", ifname: "eth0", mode: "auto" as const }, present, progIds });
const K = "xdp@ns@eth0";

const line = (p: ReturnType<typeof plan>) => p.actions.map((a) => [a.op, `${a.kind}/${a.name}${a.slot !== undefined ? `[${a.slot}]` : ""}`, a.strategy ?? ""].join(" ").trim());

describe("plan", () => {
  it.each<[string, DesiredState, ObservedState, string[]]>([
    ["nothing there yet", desired({ maps: [map("m")], programs: [prog("f")], attachments: [xdp("a", "f")] }), observed({ hooks: { [K]: hook([]) } }), ["create Map/m", "load Program/f", "attach Attachment/a"]],
    [
      "everything in place",
      desired({ maps: [map("m")], programs: [prog("f")], attachments: [xdp("a", "f")] }),
      observed({
        maps: [{ name: "m", id: 1, def: map("m").def, entries: {} }],
        programs: [{ name: "f", digest: D("a").slice(0, 16), id: 7, tag: "t" }],
        links: [{ owner: "Attachment", name: "a", hookKey: K, id: 3, progId: 7, attached: true }],
        hooks: { [K]: hook([7]) },
      }),
      ["unchanged Map/m", "unchanged Program/f", "unchanged Attachment/a"],
    ],
    [
      "a new program version swaps the link and prunes the old version",
      desired({ programs: [prog("f", D("b"))], attachments: [xdp("a", "f")] }),
      observed({ programs: [{ name: "f", digest: D("a").slice(0, 16), id: 7, tag: "t" }], links: [{ owner: "Attachment", name: "a", hookKey: K, id: 3, progId: 7, attached: true }], hooks: { [K]: hook([7]) } }),
      ["load Program/f", "swap Attachment/a link-update", "prune Program/f"],
    ],
    [
      "tracepoints swap make-before-break",
      desired({ programs: [prog("t", D("b"))], attachments: [{ name: "a", source: "m.yaml", program: "t", hook: { type: "tracepoint", name: "syscalls/sys_enter_getppid" }, takeover: false }] }),
      observed({ programs: [{ name: "t", digest: D("a").slice(0, 16), id: 7, tag: "t" }], links: [{ owner: "Attachment", name: "a", hookKey: "tracepoint@syscalls%2Fsys_enter_getppid", id: 3, progId: 7, attached: true }] }),
      ["load Program/t", "swap Attachment/a make-before-break", "prune Program/t"],
    ],
    ["foreign XDP program: conflict", desired({ programs: [prog("f")], attachments: [xdp("a", "f")] }), observed({ hooks: { [K]: hook([99]) } }), ["load Program/f", "conflict Attachment/a"]],
    ["foreign XDP program with takeover", desired({ programs: [prog("f")], attachments: [xdp("a", "f", { takeover: true })] }), observed({ hooks: { [K]: hook([99]) } }), ["load Program/f", "swap Attachment/a takeover"]],
    [
      "foreign tcx programs coexist",
      desired({ programs: [prog("f")], attachments: [xdp("a", "f", { hook: { type: "tcx", netns: "ns", interfaces: ["eth0"], direction: "ingress" } })] }),
      observed({ hooks: { "tcx-ingress@ns@eth0": { hook: { type: "tcx", netns: "ns", ifname: "eth0", direction: "ingress" }, present: true, progIds: [99] } } }),
      ["load Program/f", "attach Attachment/a"],
    ],
    ["missing interface: blocked", desired({ programs: [prog("f")], attachments: [xdp("a", "f")] }), observed({ hooks: { [K]: hook([], false) } }), ["load Program/f", "blocked Attachment/a"]],
    [
      "globs expand to the interfaces present",
      desired({ attachments: [xdp("a", "f", { hook: { type: "xdp", netns: "ns", interfaces: ["eth*"], mode: "auto" } })] }),
      observed({}),
      ["attach Attachment/a", "attach Attachment/a"],
    ],
    [
      "owned objects no longer named are pruned, links first",
      desired({}),
      observed({ maps: [{ name: "m", id: 1, def: map("m").def, entries: {} }], programs: [{ name: "f", digest: "x", id: 7, tag: "t" }], links: [{ owner: "Attachment", name: "a", hookKey: K, id: 3, progId: 7, attached: true }] }),
      ["prune Attachment/a", "prune Program/f", "prune Map/m"],
    ],
  ])("%s", (_, d, o, want) => {
    expect(line(plan(d, o))).toEqual(want);
  });

  it.each<[string, Partial<DesiredMap>, Record<string, string | null>, string]>([
    ["initial entries missing", { entries: [{ key: "00000000", value: "0100000000000000" }] }, { "00000000": null }, "set-entries"],
    ["entries present, not overwritten", { entries: [{ key: "00000000", value: "0100000000000000" }] }, { "00000000": "0200000000000000" }, "unchanged"],
    ["entries differ and overwrite", { entries: [{ key: "00000000", value: "0100000000000000" }], overwriteEntries: true }, { "00000000": "0200000000000000" }, "set-entries"],
    ["definition changed, keep", { def: { type: "array", keySize: 4, valueSize: 8, maxEntries: 32, flags: 0 } }, {}, "conflict"],
    ["definition changed, recreate", { def: { type: "array", keySize: 4, valueSize: 8, maxEntries: 32, flags: 0 }, onChange: "recreate" }, {}, "recreate"],
    ["definition changed, migrate", { def: { type: "array", keySize: 4, valueSize: 8, maxEntries: 32, flags: 0 }, onChange: "migrate" }, {}, "migrate"],
  ])("maps: %s", (_, d, entries, op) => {
    const p = plan(desired({ maps: [map("m", d)] }), observed({ maps: [{ name: "m", id: 1, def: map("m").def, entries }] }));
    expect(p.actions).toMatchObject([{ op, kind: "Map", name: "m" }]);
    if (op === "conflict") expect(p.actions[0]!.reason).toBe("definition changed (maxEntries 16 -> 32) and onChange is keep: refusing to lose its contents");
  });

  describe("chains", () => {
    const chain: DesiredChain = { name: "c", source: "m.yaml", root: "r", progArray: "pa", stages: ["s0", "s1"], hook: { type: "xdp", netns: "ns", interfaces: ["eth0"], mode: "auto" }, takeover: false };
    const pa = map("pa", { def: { type: "prog_array", keySize: 4, valueSize: 4, maxEntries: 4, flags: 0 } });
    const loaded = [
      { name: "r", digest: D("a").slice(0, 16), id: 10, tag: "t" },
      { name: "s0", digest: D("a").slice(0, 16), id: 11, tag: "t" },
      { name: "s1", digest: D("a").slice(0, 16), id: 12, tag: "t" },
    ];
    const base = { maps: [{ name: "pa", id: 1, def: pa.def, entries: {}, slots: [11, 12, 0, 0] }], programs: loaded, links: [{ owner: "Chain" as const, name: "c", hookKey: K, id: 5, progId: 10, attached: true }], hooks: { [K]: hook([10]) } };
    const d = (stages = [prog("s0"), prog("s1")]) => desired({ maps: [pa], programs: [prog("r"), ...stages], chains: [chain] });

    it("in place: every slot and the root unchanged", () => {
      expect(plan(d(), observed(base)).changes).toBe(false);
    });
    it("a changed stage is one slot update", () => {
      expect(line(plan(d([prog("s0"), prog("s1", D("b"))]), observed(base))).filter((l) => !l.startsWith("unchanged"))).toEqual(["load Program/s1", "swap Chain/c[1] chain-slot", "prune Program/s1"]);
    });
    it("a filled slot past the last stage is cleared", () => {
      expect(line(plan(d(), observed({ ...base, maps: [{ ...base.maps[0]!, slots: [11, 12, 13, 0] }] }))).filter((l) => !l.startsWith("unchanged"))).toEqual(["swap Chain/c[2] chain-slot"]);
    });
    it("a replaced prog-array rebuilds the chain beside the old one", () => {
      const bigger = map("pa", { def: { ...pa.def, maxEntries: 8 }, onChange: "recreate" });
      const p = plan(desired({ maps: [bigger], programs: [prog("r"), prog("s0"), prog("s1")], chains: [chain] }), observed(base));
      expect(line(p).filter((l) => !l.startsWith("unchanged"))).toEqual(["recreate Map/pa", "swap Chain/c chain-rebuild"]);
    });
  });

  it("is deterministic: the same input gives the same plan", () => {
    const d = desired({ maps: [map("m")], programs: [prog("f"), prog("g")], attachments: [xdp("a", "f"), xdp("b", "g")] });
    const o = observed({ hooks: { [K]: hook([]) } });
    expect(JSON.stringify(plan(d, o))).toBe(JSON.stringify(plan(structuredClone(d), structuredClone(o))));
  });
});
