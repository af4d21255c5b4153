// The pure parts of a rollout as tables: hosts into rings, a host's verdict on a revision, health
// gates against reported figures. No root, no etcd.
import { describe, expect, it } from "vitest";
import { assignRings, checkGate, hostVerdict, type Gate, type HostReport, type RolloutSpec, type Sample } from "../../reconciler/fleet/rollout-rings.ts";

const fleet = (n: number, labels: (i: number) => Record<string, string> = () => ({})) => Array.from({ length: n }, (_, i) => ({ host: `h${String(i).padStart(2, "0")}`, labels: labels(i) }));
type Rings = RolloutSpec["rings"];

describe("assignRings", () => {
  it.each<[string, number, Rings, number[]]>([
    ["1 host, 10%, 50%, 100% of 20", 20, [{ name: "c", hosts: 1 }, { name: "a", percent: 10 }, { name: "b", percent: 50 }, { name: "d", percent: 100 }], [1, 1, 8, 10]],
    ["1 host, 10%, 50%, 100% of 5 (shares round up)", 5, [{ name: "c", hosts: 1 }, { name: "a", percent: 10 }, { name: "b", percent: 50 }, { name: "d", percent: 100 }], [1, 0, 2, 2]],
    ["a share below what earlier rings took is empty", 10, [{ name: "c", hosts: 5 }, { name: "a", percent: 20 }, { name: "d", percent: 100 }], [5, 0, 5]],
    ["the last ring takes the rest, whatever it says", 10, [{ name: "c", hosts: 1 }, { name: "d", percent: 30 }], [1, 9]],
    ["more hosts asked than there are", 3, [{ name: "c", hosts: 10 }, { name: "d" }], [3, 0]],
    ["one ring: everyone", 4, [{ name: "all" }], [4]],
    ["an empty fleet", 0, [{ name: "c", hosts: 1 }, { name: "d" }], [0, 0]],
  ])("%s", (_, n, rings, sizes) => {
    const r = assignRings(fleet(n), rings);
    expect(r.map((x) => x.length)).toEqual(sizes);
    expect(r.flat().sort()).toEqual(fleet(n).map((m) => m.host));
  });

  it("a hostSelector ring takes the hosts it matches, in name order, each host once", () => {
    const members = fleet(6, (i) => (i % 2 ? { zone: "b" } : { zone: "a" }));
    expect(assignRings(members, [{ name: "b", hostSelector: { matchLabels: { zone: "b" } } }, { name: "first", hosts: 1 }, { name: "rest" }])).toEqual([["h01", "h03", "h05"], ["h00"], ["h02", "h04"]]);
  });
});

describe("hostVerdict", () => {
  const D = "sha256:new";
  const r = (o: Partial<HostReport>): HostReport => ({ ready: true, reason: "ReconciliationSucceeded", message: "", ...o });
  it.each<[string, HostReport | undefined, number, string]>([
    ["Ready on the revision", r({ lastAppliedRevision: D }), 0, "done"],
    ["applied but not Ready (Degraded)", r({ lastAppliedRevision: D, ready: false }), 0, "waiting"],
    ["still on the old one", r({ lastAppliedRevision: "sha256:old" }), 0, "waiting"],
    ["refused it (Stalled)", r({ lastAttemptedRevision: D, errorClass: "Stalled", ready: false }), 0, "failed"],
    ["refused an older one (Stalled)", r({ lastAttemptedRevision: "sha256:old", errorClass: "Stalled", ready: false }), 0, "waiting"],
    ["its kernel lacks a feature (Blocked)", r({ failedRevision: D, errorClass: "Blocked", ready: false }), 0, "blocked"],
    ["Blocked on an older one", r({ failedRevision: "sha256:old", errorClass: "Blocked", ready: false }), 0, "waiting"],
    ["no status yet", undefined, 0, "waiting"],
    ["no status past the timeout", undefined, 61_000, "failed"],
    ["not Ready past the timeout", r({ lastAppliedRevision: "sha256:old" }), 61_000, "failed"],
  ])("%s: %s", (_, report, elapsed, state) => {
    expect(hostVerdict(D, report, 1000, 1000 + elapsed, 60_000).state).toBe(state);
  });
});

describe("checkGate", () => {
  const s = (name: string, value: number, labels: Record<string, string> = {}): Sample => ({ name, labels, value });
  const before = [s("drops", 10, { rule: "0" }), s("drops", 5, { rule: "1" }), s("passed", 100), s("bpfops_program_run_time_ns", 1000, { program: "f" }), s("bpfops_program_run_count", 10, { program: "f" })];
  const after = [s("drops", 10, { rule: "0" }), s("drops", 8, { rule: "1" }), s("passed", 200), s("bpfops_program_run_time_ns", 6000, { program: "f" }), s("bpfops_program_run_count", 60, { program: "f" })];
  it.each<[string, Partial<Gate>, boolean, number | null]>([
    ["an increase within max", { metric: "drops", max: 3 }, true, 3],
    ["an increase over max", { metric: "drops", max: 2 }, false, 3],
    ["labels narrow the samples", { metric: "drops", labels: { rule: "0" }, max: 0 }, true, 0],
    ["a floor", { metric: "passed", min: 150 }, false, 100],
    ["a share of another metric", { metric: "drops", of: { metric: "passed" }, max: 0.05 }, true, 0.03],
    ["a share over its bound", { metric: "drops", of: { metric: "passed" }, max: 0.01 }, false, 0.03],
    ["a metric nobody reports fails", { metric: "missing", max: 1 }, false, null],
    ["a program's run time per run", { program: "f", max: 100 }, true, 100],
    ["a program's run time over its bound", { program: "f", max: 99 }, false, 100],
    ["a program without run statistics fails", { program: "g", max: 100 }, false, null],
  ])("%s", (_, g, ok, figure) => {
    const r = checkGate({ name: "g", ...g } as Gate, before, after);
    expect([r.ok, r.figure]).toEqual([ok, figure]);
  });

  it("some of nothing is an unbounded share", () => {
    expect(checkGate({ name: "g", metric: "drops", of: { metric: "none" }, max: 1 } as Gate, [], [s("drops", 1), s("none", 0)])).toMatchObject({ ok: false, figure: Infinity });
  });
});
