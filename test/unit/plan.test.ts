// plan(desired, observed) as a table: plain data in, ordered actions out. No kernel, no root.
import { describe, expect, it } from "vitest";
import { plan } from "../../reconciler/core/plan.ts";
import type { DesiredAttachment, DesiredChain, DesiredMap, DesiredProgram, DesiredState } from "../../reconciler/core/desired.ts";
import type { ObservedState } from "../../reconciler/core/observed.ts";
import { actionView, renderPlanText } from "../../reconciler/cli/plan-output.ts";
import { hookKey } from "../../reconciler/core/layout.ts";

const D = (c: string) => c.repeat(64);
const prog = (name: string, digest = D("a")): DesiredProgram => ({ name, source: "m.yaml", objectPath: "x.o", objectDigest: D("0"), program: "p", type: "xdp", globals: {}, maps: {}, digest });
const map = (name: string, o: Partial<DesiredMap> = {}): DesiredMap => ({ name, source: "m.yaml", def: { type: "array", keySize: 4, valueSize: 8, maxEntries: 16, flags: 0 }, onChange: "keep", merge: "latest", entries: [], overwriteEntries: false, entryPolicy: "seed", prune: true, ...o });
const xdp = (name: string, program: string, o: Partial<DesiredAttachment> = {}): DesiredAttachment => ({ name, source: "m.yaml", program, hook: { type: "xdp", netns: "ns", interfaces: ["eth0"], mode: "auto" }, takeover: false, ...o });
const desired = (o: Partial<DesiredState>): DesiredState => ({ maps: [], programs: [], attachments: [], chains: [], ...o });
const observed = (o: Partial<ObservedState>): ObservedState => ({ root: "/r", maps: [], programs: [], objectMaps: [], links: [], hooks: {}, interfaces: { ns: ["eth0", "eth1", "lo"] }, unowned: [], warnings: [], ...o });
const omap = (name: string, id: number, def: DesiredMap["def"], entries: Record<string, string | null> = {}, slots?: number[]) => ({ name, pin: `/r/maps/${name}`, id, def, entries: new Map(Object.entries(entries)), ...(slots ? { slots } : {}) });
const oprog = (name: string, digest: string, id: number, mapIds: number[] = []) => ({ name, digest, pin: `/r/programs/${name}/${digest}`, id, tag: "t", mapIds });
const olink = (name: string, hookKey: string, id: number, progId: number, owner: "Attachment" | "Chain" = "Attachment") => ({ owner, name, hookKey, pin: `/r/${owner === "Chain" ? "chains" : "links"}/${name}/${hookKey}`, id, progId, attached: true });
const hook = (progIds: number[], present = true) => ({ hook: { type: "xdp" as const, netns: "ns", ifname: "eth0", mode: "auto" as const }, present, progIds });
const K = "xdp@ns@eth0";
const T = "tcx-ingress@ns@eth0";
const tcx = (name: string, program: string, position?: "before" | "after"): DesiredAttachment => ({ ...xdp(name, program, { hook: { type: "tcx", netns: "ns", interfaces: ["eth0"], direction: "ingress" } }), ...(position ? { order: { position, attachment: "b" } } : {}) });
const thook = (progIds: number[], linkIds: number[]) => ({ hook: { type: "tcx" as const, netns: "ns", ifname: "eth0", direction: "ingress" as const }, present: true, progIds, linkIds });
/** a (prog 7, link 3) and b (prog 8, link 4) attached, in the order of linkIds */
const ordered = (progIds: number[], linkIds: number[]) =>
  observed({ programs: [oprog("f", D("a").slice(0, 16), 7), oprog("g", D("b").slice(0, 16), 8)], links: [olink("a", T, 3, 7), olink("b", T, 4, 8)], hooks: { [T]: thook(progIds, linkIds) } });

const line = (p: ReturnType<typeof plan>) => p.actions.map(actionView).map((a) => [a.op, `${a.kind}/${a.name}${a.slot !== undefined ? `[${a.slot}]` : ""}`, a.strategy ?? ""].join(" ").trim());

describe("plan", () => {
  it.each<[string, DesiredState, ObservedState, string[]]>([
    ["nothing there yet", desired({ maps: [map("m")], programs: [prog("f")], attachments: [xdp("a", "f")] }), observed({ hooks: { [K]: hook([]) } }), ["create Map/m", "load Program/f", "attach Attachment/a"]],
    [
      "everything in place",
      desired({ maps: [map("m")], programs: [prog("f")], attachments: [xdp("a", "f")] }),
      observed({
        maps: [omap("m", 1, map("m").def, {})],
        programs: [oprog("f", D("a").slice(0, 16), 7)],
        links: [olink("a", K, 3, 7, "Attachment")],
        hooks: { [K]: hook([7]) },
      }),
      ["unchanged Map/m", "unchanged Program/f", "unchanged Attachment/a"],
    ],
    [
      "a new program version swaps the link and prunes the old version",
      desired({ programs: [prog("f", D("b"))], attachments: [xdp("a", "f")] }),
      observed({ programs: [oprog("f", D("a").slice(0, 16), 7)], links: [olink("a", K, 3, 7, "Attachment")], hooks: { [K]: hook([7]) } }),
      ["load Program/f", "swap Attachment/a link-update", "prune Program/f"],
    ],
    [
      "tracepoints swap make-before-break",
      desired({ programs: [prog("t", D("b"))], attachments: [{ name: "a", source: "m.yaml", program: "t", hook: { type: "tracepoint", name: "syscalls/sys_enter_getppid" }, takeover: false }] }),
      observed({ programs: [oprog("t", D("a").slice(0, 16), 7)], links: [olink("a", "tracepoint@syscalls%2Fsys_enter_getppid", 3, 7, "Attachment")] }),
      ["load Program/t", "swap Attachment/a make-before-break", "prune Program/t"],
    ],
    ["foreign XDP program: conflict", desired({ programs: [prog("f")], attachments: [xdp("a", "f")] }), observed({ hooks: { [K]: hook([99]) } }), ["load Program/f", "conflict Attachment/a"]],
    ["foreign XDP link with takeover", desired({ programs: [prog("f")], attachments: [xdp("a", "f", { takeover: true })] }), observed({ hooks: { [K]: { ...hook([99]), foreignLinks: { 99: 55 } } } }), ["load Program/f", "swap Attachment/a takeover"]],
    ["foreign XDP program without a link, takeover: conflict", desired({ programs: [prog("f")], attachments: [xdp("a", "f", { takeover: true })] }), observed({ hooks: { [K]: hook([99]) } }), ["load Program/f", "conflict Attachment/a"]],
    [
      "a hook another bpfops root owns is a conflict, even with takeover",
      desired({ programs: [prog("f")], attachments: [xdp("a", "f", { takeover: true })] }),
      observed({ hooks: { [K]: { ...hook([99]), foreignLinks: { 99: 55 }, otherRoots: { 99: "/sys/fs/bpf/other" } } } }),
      ["load Program/f", "conflict Attachment/a"],
    ],
    [
      "a pinned version bound to a map that is no longer the pinned one is reloaded (drift)",
      desired({ maps: [map("m")], programs: [{ ...prog("f"), maps: { m_obj: { bind: "m" } } }] }),
      observed({ maps: [omap("m", 2, map("m").def)], programs: [oprog("f", D("a").slice(0, 16), 7, [1])] }),
      ["unchanged Map/m", "load Program/f"],
    ],
    [
      "a pinned version bound to the pinned map is unchanged",
      desired({ maps: [map("m")], programs: [{ ...prog("f"), maps: { m_obj: { bind: "m" } } }] }),
      observed({ maps: [omap("m", 2, map("m").def)], programs: [oprog("f", D("a").slice(0, 16), 7, [2])] }),
      ["unchanged Map/m", "unchanged Program/f"],
    ],
    [
      "a version bound to a map this plan replaces is reloaded, even when its pin exists",
      desired({ maps: [map("m", { def: { ...map("m").def, maxEntries: 32 }, onChange: "migrate" })], programs: [{ ...prog("f"), maps: { m_obj: { bind: "m" } } }] }),
      observed({ maps: [omap("m", 2, map("m").def)], programs: [oprog("f", D("a").slice(0, 16), 7, [2])] }),
      ["migrate Map/m", "load Program/f"],
    ],
    [
      "a program pin holding another program than the one bpfops pinned is reloaded",
      desired({ programs: [prog("f")] }),
      observed({ programs: [{ ...oprog("f", D("a").slice(0, 16), 8), recordedId: 7 }] }),
      ["load Program/f"],
    ],
    [
      "a map pin holding another map than the one bpfops pinned is recreated",
      desired({ maps: [map("m")] }),
      observed({ maps: [{ ...omap("m", 3, map("m").def), recordedId: 2 }] }),
      ["recreate Map/m"],
    ],
    [
      "a pinned object map this version declares with another size is a conflict, not a libbpf failure at load",
      desired({ programs: [{ ...prog("f", D("b")), maps: { stats: { pin: true, maxEntries: 64 } }, pinnedMaps: { stats: { type: "hash", keySize: 4, valueSize: 8, maxEntries: 64, flags: 0 } } }] }),
      observed({ programs: [oprog("f", D("a").slice(0, 16), 7)], objectMaps: [{ program: "f", map: "stats", pin: "/r/objmaps/f/stats", id: 3, def: { type: "hash", keySize: 4, valueSize: 8, maxEntries: 16, flags: 0 } }] }),
      ["conflict Program/f", "prune Program/f"],
    ],
    ...(["recreate", "migrate"] as const).map((onChange): [string, DesiredState, ObservedState, string[]] => [
      `a resized pinned object map under onChange ${onChange}: a new map beside it, loaded with, switched when the hooks move`,
      desired({ programs: [{ ...prog("f", D("b")), maps: { stats: { pin: true, maxEntries: 64, onChange } }, pinnedMaps: { stats: { type: "hash", keySize: 4, valueSize: 8, maxEntries: 64, flags: 0 } } }] }),
      observed({ programs: [oprog("f", D("a").slice(0, 16), 7)], objectMaps: [{ program: "f", map: "stats", pin: "/r/objmaps/f/stats", id: 3, def: { type: "hash", keySize: 4, valueSize: 8, maxEntries: 16, flags: 0 } }] }),
      [`${onChange} Map/f/stats`, "load Program/f", "prune Program/f"],
    ]),
    [
      "a pinned object map declared as it is pinned is no conflict",
      desired({ programs: [{ ...prog("f", D("b")), pinnedMaps: { stats: { type: "hash", keySize: 4, valueSize: 8, maxEntries: 16, flags: 0 } } }] }),
      observed({ programs: [oprog("f", D("a").slice(0, 16), 7)], objectMaps: [{ program: "f", map: "stats", pin: "/r/objmaps/f/stats", id: 3, def: { type: "hash", keySize: 4, valueSize: 8, maxEntries: 16, flags: 0 } }] }),
      ["load Program/f", "prune Program/f"],
    ],
    [
      "pins bpfops did not make are reported, never pruned",
      desired({}),
      observed({ unowned: [{ pin: "/r/maps/theirs", kind: "Map", name: "theirs" }] }),
      ["unowned Map/theirs"],
    ],
    [
      "a map to create where someone else pinned one is a conflict",
      desired({ maps: [map("theirs")] }),
      observed({ unowned: [{ pin: "/r/maps/theirs", kind: "Map", name: "theirs" }] }),
      ["conflict Map/theirs", "unowned Map/theirs"],
    ],
    [
      "a map applied with prune: false stays when its manifest goes",
      desired({}),
      observed({ maps: [{ ...omap("m", 1, map("m").def), keep: true }] }),
      ["unchanged Map/m"],
    ],
    [
      "fentry hooks this kernel cannot attach are blocked with the probe's reason",
      desired({ programs: [prog("f")], attachments: [{ name: "a", source: "m.yaml", program: "f", hook: { type: "fentry", function: "tcp_connect" }, takeover: false }] }),
      observed({ hooks: { "fentry@tcp_connect": { hook: { type: "fentry", function: "tcp_connect" }, present: true, progIds: [], unsupported: true, error: "fentry is not supported on this kernel: EPERM" } } }),
      ["load Program/f", "blocked Attachment/a"],
    ],
    [
      "foreign tcx programs coexist",
      desired({ programs: [prog("f")], attachments: [xdp("a", "f", { hook: { type: "tcx", netns: "ns", interfaces: ["eth0"], direction: "ingress" } })] }),
      observed({ hooks: { "tcx-ingress@ns@eth0": { hook: { type: "tcx", netns: "ns", ifname: "eth0", direction: "ingress" }, present: true, progIds: [99] } } }),
      ["load Program/f", "attach Attachment/a"],
    ],
    ["missing interface: blocked", desired({ programs: [prog("f")], attachments: [xdp("a", "f")] }), observed({ hooks: { [K]: hook([], false) } }), ["load Program/f", "blocked Attachment/a"]],
    // Legacy paths (no link for the hook on this kernel): a program pinned at the link's path.
    ["legacy: a new tc attachment goes through cls_bpf", desired({ programs: [prog("f")], attachments: [tcx("a", "f")] }), observed({ hooks: { [T]: { ...thook([], []), legacy: "tc" } } }), ["load Program/f", "attach Attachment/a"]],
    ["legacy: a new version replaces the program in place", desired({ programs: [prog("f", D("c"))], attachments: [tcx("a", "f")] }), observed({ programs: [oprog("f", D("a").slice(0, 16), 7)], links: [{ ...olink("a", T, 7, 7), legacy: "tc" as const }], hooks: { [T]: { ...thook([], []), legacy: "tc" } } }), ["load Program/f", "swap Attachment/a replace", "prune Program/f"]],
    ["legacy: order needs tcx links", desired({ programs: [prog("f"), prog("g")], attachments: [tcx("a", "f", "before"), tcx("b", "g")] }), observed({ hooks: { [T]: { ...thook([], []), legacy: "tc" } } }), ["load Program/f", "load Program/g", "attach Attachment/b", "blocked Attachment/a"]],
    // Ordered tcx Attachments: "a" goes before "b" on tcx-ingress@ns@eth0 (T below).
    ["ordered: the anchor is attached first, whatever the names", desired({ programs: [prog("f"), prog("g")], attachments: [tcx("a", "f", "before"), tcx("b", "g")] }), observed({ hooks: { [T]: thook([], []) } }), ["load Program/f", "load Program/g", "attach Attachment/b", "attach Attachment/a"]],
    ["ordered: an anchor not attached on the hook blocks", desired({ programs: [prog("f")], attachments: [tcx("a", "f", "before")] }), observed({ hooks: { [T]: thook([], []) } }), ["load Program/f", "blocked Attachment/a"]],
    ["ordered: in place", desired({ programs: [prog("f"), prog("g", D("b"))], attachments: [tcx("a", "f", "before"), tcx("b", "g")] }), ordered([7, 8], [3, 4]), ["unchanged Program/f", "unchanged Program/g", "unchanged Attachment/b", "unchanged Attachment/a"]],
    ["ordered: the same program in the wrong place is re-placed", desired({ programs: [prog("f"), prog("g", D("b"))], attachments: [tcx("a", "f", "after"), tcx("b", "g")] }), ordered([7, 8], [3, 4]), ["unchanged Program/f", "unchanged Program/g", "unchanged Attachment/b", "swap Attachment/a re-place"]],
    ["ordered: a new version in the wrong place goes in the right one before the old link goes", desired({ programs: [prog("f", D("c")), prog("g", D("b"))], attachments: [tcx("a", "f", "after"), tcx("b", "g")] }), ordered([7, 8], [3, 4]), ["load Program/f", "unchanged Program/g", "unchanged Attachment/b", "swap Attachment/a make-before-break", "prune Program/f"]],
    ["ordered: a new version in the right place is a link update", desired({ programs: [prog("f", D("c")), prog("g", D("b"))], attachments: [tcx("a", "f", "before"), tcx("b", "g")] }), ordered([7, 8], [3, 4]), ["load Program/f", "unchanged Program/g", "unchanged Attachment/b", "swap Attachment/a link-update", "prune Program/f"]],
    [
      "globs expand to the interfaces present",
      desired({ programs: [prog("f")], attachments: [xdp("a", "f", { hook: { type: "xdp", netns: "ns", interfaces: ["eth*"], mode: "auto" } })] }),
      observed({}),
      ["load Program/f", "attach Attachment/a", "attach Attachment/a"],
    ],
    [
      "owned objects no longer named are pruned, links first",
      desired({}),
      observed({ maps: [omap("m", 1, map("m").def, {})], programs: [oprog("f", "x", 7)], links: [olink("a", K, 3, 7, "Attachment")] }),
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
    const p = plan(desired({ maps: [map("m", d)] }), observed({ maps: [omap("m", 1, map("m").def, entries)] }));
    expect(p.actions).toMatchObject([{ op, kind: "Map", name: "m" }]);
    if (op === "conflict") expect(p.actions[0]!.reason).toBe("definition changed (maxEntries 16 -> 32) and onChange is keep: refusing to lose its contents");
  });

  describe("entry policies", () => {
    const hash = { type: "hash", keySize: 4, valueSize: 4, maxEntries: 4096, flags: 0 };
    const e = (k: number, v: number) => ({ key: k.toString(16).padStart(8, "0"), value: v.toString(16).padStart(8, "0") });
    const held = (...es: Array<{ key: string; value: string }>) => Object.fromEntries(es.map((x) => [x.key, x.value]));
    const exact = (datapathWrites: DesiredMap["datapathWrites"], ...entries: Array<{ key: string; value: string }>): Partial<DesiredMap> => ({ def: hash, entryPolicy: "exact", datapathWrites, entries });
    it.each<[string, Partial<DesiredMap>, Record<string, string | null>, { op: string; added?: number; changed?: number; removed?: number }]>([
      ["seed leaves an entry git does not list", { def: hash, entries: [e(1, 1)] }, held(e(1, 1), e(2, 2)), { op: "unchanged" }],
      ["seed adds a missing entry, never removes", { def: hash, entries: [e(1, 1), e(3, 3)] }, held(e(1, 1), e(2, 2)), { op: "set-entries", added: 1, changed: 0, removed: 0 }],
      ["exact removes an entry git no longer lists (a revoked grant)", exact("none", e(1, 1)), held(e(1, 1), e(2, 2)), { op: "set-entries", added: 0, changed: 0, removed: 1 }],
      ["exact rewrites a changed value", exact("none", e(1, 9)), held(e(1, 1)), { op: "set-entries", added: 0, changed: 1, removed: 0 }],
      ["exact adds, changes and removes in one plan", exact("none", e(1, 9), e(3, 3)), held(e(1, 1), e(2, 2)), { op: "set-entries", added: 1, changed: 1, removed: 1 }],
      ["exact with datapathWrites values never rewrites a value", exact("values", e(1, 9)), held(e(1, 1)), { op: "unchanged" }],
      ["exact with datapathWrites values still removes a key", exact("values", e(1, 9)), held(e(1, 1), e(2, 5)), { op: "set-entries", added: 0, changed: 0, removed: 1 }],
      ["exact and in place", exact("none", e(1, 1), e(2, 2)), held(e(1, 1), e(2, 2)), { op: "unchanged" }],
      ["exact on an empty manifest list empties the map", exact("none"), held(e(1, 1), e(2, 2)), { op: "set-entries", added: 0, changed: 0, removed: 2 }],
    ])("%s", (_, d, entries, want) => {
      const p = plan(desired({ maps: [map("m", d)] }), observed({ maps: [omap("m", 1, hash, entries)] }));
      expect(p.actions).toMatchObject([{ op: want.op, kind: "Map", name: "m" }]);
      if (want.op === "set-entries") expect(actionView(p.actions[0]!).entryChanges).toMatchObject({ added: want.added, changed: want.changed, removed: want.removed });
    });

    it("an exact change that replaces most of a large map is a new map the programs switch to, not writes into the live one", () => {
      const old = Array.from({ length: 2000 }, (_, i) => e(i, 1));
      const next = Array.from({ length: 2000 }, (_, i) => e(i + 1500, 2));
      const p = plan(desired({ maps: [map("m", exact("none", ...next))] }), observed({ maps: [omap("m", 1, hash, held(...old))] }));
      expect(p.actions).toMatchObject([{ op: "recreate", kind: "Map", name: "m", exact: true }]);
      expect(p.actions[0]!.reason).toMatch(/entries: 1500 added, 500 changed, 1500 removed of 2000; a new map is filled beside this one/);
      // a 1% change of the same map is written in place
      const small = old.map((x, i) => (i < 20 ? e(i, 7) : x));
      expect(plan(desired({ maps: [map("m", exact("none", ...small))] }), observed({ maps: [omap("m", 1, hash, held(...old))] })).actions).toMatchObject([{ op: "set-entries" }]);
    });

    it("the text plan lists each entry, and counts the rest when there are many", () => {
      const many = Array.from({ length: 30 }, (_, i) => e(i, 1));
      const p = plan(desired({ maps: [map("m", exact("none", e(1, 9)))] }), observed({ maps: [omap("m", 1, hash, held(e(1, 1), e(2, 2)))] }));
      const text = renderPlanText(p, { source: "s", bpffsRoot: "/r" }, undefined, { colour: false, showUnchanged: false });
      expect(text).toContain("~ 00000001 00000001 -> 00000009");
      expect(text).toContain("- 00000002 (was 00000002)");
      const big = plan(desired({ maps: [map("m", exact("none", ...many))] }), observed({ maps: [omap("m", 1, hash, {})] }));
      const bigText = renderPlanText(big, { source: "s", bpffsRoot: "/r" }, undefined, { colour: false, showUnchanged: false });
      expect(bigText).toContain("+ 00000000 -> 00000001");
      expect(bigText).toContain("... and 10 more");
    });
  });

  describe("chains", () => {
    const chain: DesiredChain = { name: "c", source: "m.yaml", root: "r", progArray: "pa", stages: ["s0", "s1"], hook: { type: "xdp", netns: "ns", interfaces: ["eth0"], mode: "auto" }, takeover: false };
    const pa = map("pa", { def: { type: "prog_array", keySize: 4, valueSize: 4, maxEntries: 4, flags: 0 } });
    const loaded = [
      oprog("r", D("a").slice(0, 16), 10),
      oprog("s0", D("a").slice(0, 16), 11),
      oprog("s1", D("a").slice(0, 16), 12),
    ];
    const base = { maps: [omap("pa", 1, pa.def, {}, [11, 12, 0, 0])], programs: loaded, links: [olink("c", K, 5, 10, "Chain")], hooks: { [K]: hook([10]) } };
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

  it("a changed program says what changed, from the spec recorded with the running version", () => {
    const next = { ...prog("f", D("b")), globals: { filter_version: "02000000" } };
    const running = { ...oprog("f", D("a").slice(0, 16), 7), spec: { o: D("0").slice(0, 16), t: "xdp", g: { filter_version: "01000000" }, m: {} } };
    const p = plan(desired({ programs: [next] }), observed({ programs: [running] }));
    expect(p.actions.find((a) => a.op === "load")!.reason).toBe("changed: global filter_version 1 -> 2 (object x.o)");
  });

  it("hook keys too long for a bpffs name are hashed, distinct and stable", () => {
    const long = (n: number) => ({ type: "cgroup" as const, path: `/sys/fs/cgroup/${"a".repeat(300)}/${n}`, attachType: "cgroup_inet_ingress" });
    const [a, b] = [hookKey(long(1)), hookKey(long(2))];
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(200);
    expect(a).not.toBe(b);
    expect(hookKey(long(1))).toBe(a);
    expect(hookKey({ type: "xdp", netns: "ns", ifname: "eth0", mode: "auto" })).toBe("xdp@ns@eth0");
  });

  it("a collection's programs are there by <Program>/<program>: each hook gets its program's pin beside the version's", () => {
    const coll = { ...prog("c"), program: "entry", members: [{ program: "tc_count", type: "sched_cls" }] };
    const tcxAt = (name: string, program: string) => xdp(name, program, { hook: { type: "tcx", netns: "ns", interfaces: ["eth0"], direction: "ingress" } });
    const fresh = plan(desired({ programs: [coll], attachments: [xdp("a", "c/entry"), tcxAt("b", "c/tc_count")] }), observed({}));
    const pinOf = (p: ReturnType<typeof plan>, name: string) => (p.actions.find((a) => a.name === name && a.kind === "Attachment") as { programPin: string }).programPin;
    expect([pinOf(fresh, "a"), pinOf(fresh, "b")]).toEqual([`/r/programs/c/${D("a").slice(0, 16)}`, `/r/programs/c/${D("a").slice(0, 16)}@tc_count`]);
    // In place: unchanged when the hooks run the version's programs; a member lost from its pin reloads the version.
    const parts = { members: { tc_count: 8 }, parts: [`/r/programs/c/${D("a").slice(0, 16)}@tc_count`] };
    const there = observed({ programs: [{ ...oprog("c", D("a").slice(0, 16), 7), ...parts }], links: [olink("a", K, 3, 7), olink("b", T, 4, 8)], hooks: { [K]: hook([7]), [T]: thook([8], [4]) } });
    expect(line(plan(desired({ programs: [coll], attachments: [xdp("a", "c/entry"), tcxAt("b", "c/tc_count")] }), there))).toEqual(["unchanged Program/c", "unchanged Attachment/a", "unchanged Attachment/b"]);
    const lost = observed({ programs: [oprog("c", D("a").slice(0, 16), 7)], links: [olink("a", K, 3, 7), olink("b", T, 4, 8)], hooks: { [K]: hook([7]), [T]: thook([8], [4]) } });
    expect(line(plan(desired({ programs: [coll], attachments: [xdp("a", "c/entry"), tcxAt("b", "c/tc_count")] }), lost))).toEqual(["load Program/c", "swap Attachment/a link-update", "swap Attachment/b link-update"]);
  });

  it("is deterministic: the same input, in any order, gives the same plan", () => {
    const d = desired({ maps: [map("m"), map("n")], programs: [prog("f"), prog("g"), prog("h", D("c"))], attachments: [xdp("a", "f"), xdp("b", "g")] });
    const o = observed({ hooks: { [K]: hook([]) }, programs: [oprog("h", "x", 3), oprog("old", "y", 4)], links: [olink("z", K, 9, 4)] });
    const shuffled = <T>(xs: T[], seed: number): T[] => xs.map((x, i) => [((i + 1) * seed * 2654435761) % 4294967296, x] as const).sort((a, b) => a[0] - b[0]).map(([, x]) => x);
    const want = JSON.stringify(plan(d, o));
    for (let seed = 1; seed <= 5; seed++) {
      // Desired state comes sorted from buildDesired; observation comes in directory order: shuffle what may vary.
      const o2 = { ...structuredClone(o), programs: shuffled(o.programs, seed), links: shuffled(o.links, seed) };
      const p = plan(structuredClone(d), o2);
      expect(p.actions.map((a) => `${a.op} ${a.kind}/${a.name}`).sort()).toEqual(JSON.parse(want).actions.map((a: { op: string; kind: string; name: string }) => `${a.op} ${a.kind}/${a.name}`).sort());
    }
  });
});
