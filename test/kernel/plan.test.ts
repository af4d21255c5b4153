// Planning against real kernel state: owned objects built in the bpffs layout are recognized as
// unchanged, changed, or gone; foreign programs on a hook are conflicts; --verify reports the
// verifier's verdict; and a dry run leaves every id and pin as it was.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { applyRepo, planRepo, HDR, tempRepo, writeRepo } from "./repos.ts";
import type { PlanActionJson } from "../../schemas/plan.ts";
import { kernelIds } from "../../reconciler/kernel/observe.ts";
import { listPins } from "../../reconciler/kernel/pins.ts";
import { loadObject } from "../../reconciler/kernel/object.ts";
import { attachXdpLink } from "../../reconciler/kernel/attach.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { BPF, closeAtEnd, needs, tempLab, tempPinRoot } from "./harness.ts";


function manifests(lab: Lab, o: { version?: number; tcx?: boolean; srcFilter?: "none" | "plain" | "takeover" } = {}): Record<string, string> {
  const files: Record<string, string> = {
    "filter.yaml": `${HDR}kind: Map
metadata: { name: pod-rules }
spec: { type: array, keySize: 4, valueSize: 32, maxEntries: 64, entries: [{ key: 0, value: "hex:0100110000000000 0a1a000000000000 0000000000000000 0000000000000000" }] }
---
${HDR}kind: Program
metadata: { name: pod-filter }
spec:
  object: objs/pod_filter.o
  program: pod_filter
  globals: { filter_version: ${o.version ?? 1} }
  maps: { pod_rules: { bind: pod-rules } }
---
${HDR}kind: Attachment
metadata: { name: pod-filter-dst }
spec: { program: pod-filter, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }
`,
  };
  if (o.tcx ?? true) {
    files["tcx.yaml"] = `${HDR}kind: Program
metadata: { name: tcx-counter }
spec: { object: objs/tcx_counter.o, program: tcx_counter }
---
${HDR}kind: Attachment
metadata: { name: tcx-counter-dst }
spec: { program: tcx-counter, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: ["dst*"], direction: ingress } }
`;
  }
  if (o.srcFilter && o.srcFilter !== "none") {
    files["src.yaml"] = `${HDR}kind: Attachment
metadata: { name: pod-filter-src }
spec: { program: pod-filter, takeover: ${o.srcFilter === "takeover"}, hook: { type: xdp, netns: ${lab.src.netns}, interfaces: [src0] } }
`;
  }
  return files;
}

/** Puts what a build asks for into the kernel (the reconcile under test elsewhere). */
async function applyAll(root: string, dir: string): Promise<void> {
  await applyRepo(dir, root);
}

const planFor = (root: string, dir: string) => planRepo(dir, root);

const ops = (actions: PlanActionJson[]) => actions.map((a) => `${a.op} ${a.kind}/${a.name}${a.hook ? ` ${a.hook}` : ""}${a.strategy ? ` (${a.strategy})` : ""}`);

describe("plan against the kernel", () => {
  it("applied state plans as unchanged; a changed program plans a load and a link-update swap; the old version is pruned", async (ctx) => {
    needs(ctx, "xdpLink", "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(manifests(lab));
    expect((await planFor(root, dir)).summary).toMatchObject({ create: 1, load: 2, attach: 2, unchanged: 0 });
    await applyAll(root, dir);
    const same = (await planFor(root, dir));
    expect(same.changes).toBe(false);
    expect(ops(same.actions)).toEqual([
      "unchanged Map/pod-rules",
      "unchanged Program/pod-filter",
      "unchanged Program/tcx-counter",
      `unchanged Attachment/pod-filter-dst xdp@${lab.dst.netns.replace(/\./g, "%2E")}@dst0`,
      `unchanged Attachment/tcx-counter-dst tcx-ingress@${lab.dst.netns}@dst0`,
    ]);

    writeRepo(dir, manifests(lab, { version: 2 }));
    const changed = (await planFor(root, dir));
    expect(ops(changed.actions.filter((a) => a.op !== "unchanged"))).toEqual([
      "load Program/pod-filter",
      `swap Attachment/pod-filter-dst xdp@${lab.dst.netns}@dst0 (link-update)`,
      "prune Program/pod-filter",
    ]);
    const load = changed.actions.find((a) => a.op === "load")!;
    expect(load.reason).toBe("changed: global filter_version 1 -> 2 (object objs/pod_filter.o)");
  });

  it("an owned attachment and program removed from the manifests plan as prunes", async (ctx) => {
    needs(ctx, "xdpLink", "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(manifests(lab));
    await applyAll(root, dir);
    writeRepo(dir, manifests(lab, { tcx: false }));
    expect(ops((await planFor(root, dir)).actions.filter((a) => a.op === "prune"))).toEqual([`prune Attachment/tcx-counter-dst tcx-ingress@${lab.dst.netns}@dst0`, "prune Program/tcx-counter"]);
  });

  it("a foreign XDP program on a target interface is a conflict, or a takeover swap when the manifest allows it", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const root = tempPinRoot();
    const foreign = closeAtEnd(await loadObject(BPF("xdp_dispatcher.o"), { pinRoot: tempPinRoot() }));
    const fp = closeAtEnd(foreign.program("xdp_dispatcher"));
    closeAtEnd(attachXdpLink(fp, { ifname: lab.src.ifname, netns: lab.src.netns }));
    const dir = tempRepo(manifests(lab, { srcFilter: "plain" }));
    const conflict = (await planFor(root, dir)).actions.find((a) => a.name === "pod-filter-src")!;
    expect(conflict).toMatchObject({ op: "conflict", from: `foreign prog id ${fp.id}` });
    expect(conflict.reason).toMatch(/bpfops does not own/);
    writeRepo(dir, manifests(lab, { srcFilter: "takeover" }));
    expect((await planFor(root, dir)).actions.find((a) => a.name === "pod-filter-src")).toMatchObject({ op: "swap", strategy: "takeover" });
  });

  it("an interface that is not there plans as blocked, not as an error", async (ctx) => {
    needs(ctx);
    const lab = tempLab();
    const dir = tempRepo(manifests(lab, { tcx: false }));
    writeFileSync(join(dir, "filter.yaml"), manifests(lab, { tcx: false })["filter.yaml"]!.replace("[dst0]", "[dst9]"));
    const a = (await planFor(tempPinRoot(), dir)).actions.find((x) => x.kind === "Attachment")!;
    expect(a).toMatchObject({ op: "blocked" });
    expect(a.reason).toMatch(/dst9 in netns .*: interface not found/);
  });
});

describe("bpfops reconcile --dry-run", () => {
  const cli = (args: string[]) => spawnSync(process.execPath, ["bin/bpfops.cjs", "reconcile", "--dry-run", ...args], { encoding: "utf8" });

  it("changes nothing in the kernel: every id and pin is the same before and after, with --verify", async (ctx) => {
    needs(ctx, "xdpLink", "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(manifests(lab));
    await applyAll(root, dir);
    writeRepo(dir, manifests(lab, { version: 3, srcFilter: "plain" }));
    const before = { ids: kernelIds(), pins: listPins(root) };
    const r = cli(["--path", dir, "--bpffs", root, "--verify", "--output", "json"]);
    const out = JSON.parse(r.stdout);
    expect(r.status, JSON.stringify(out.verify)).toBe(1);
    expect(out.kind).toBe("Plan");
    expect(out.verify).toEqual([expect.objectContaining({ program: "pod-filter", verdict: "accepted", verifiedInstructions: expect.any(Number) })]);
    // --verify released what it loaded; the kernel frees programs and maps after an RCU grace period.
    await expect.poll(() => ({ ids: kernelIds(), pins: listPins(root) }), { timeout: 5000, interval: 50 }).toEqual(before);
  });

  it("--verify reports a program the verifier rejects, with the manifest and the log tail, and exits 3", async (ctx) => {
    needs(ctx);
    const lab = tempLab();
    const dir = tempRepo({
      "bad.yaml": `${HDR}kind: Program\nmetadata: { name: unchecked }\nspec: { object: objs/t_rejected.o, program: unchecked_read }\n`,
    });
    void lab;
    const before = kernelIds();
    const r = cli(["--path", dir, "--bpffs", tempPinRoot(), "--verify"]);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/rejected Program\/unchecked \(bad\.yaml\): load program unchecked_read of t_rejected: verifier rejected it/);
    expect(r.stdout).toMatch(/\| invalid access to packet/);
    await expect.poll(() => kernelIds(), { timeout: 5000, interval: 50 }).toEqual(before);
  });

  it("reads the manifests of a git ref (--repo --ref), not the work tree, and names the commit", (ctx) => {
    needs(ctx);
    const lab = tempLab();
    const dir = tempRepo(manifests(lab, { tcx: false }));
    const git = (...args: string[]) => spawnSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", ...args], { encoding: "utf8" });
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("commit", "-q", "-m", "v1");
    const commit = git("rev-parse", "HEAD").stdout.trim();
    writeFileSync(join(dir, "filter.yaml"), "this: [is not committed\n");
    const r = cli(["--repo", dir, "--ref", "main", "--bpffs", tempPinRoot(), "--output", "json", "--cache", join(dir, ".cache")]);
    expect(r.status, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.revision).toBe(commit);
    expect(out.actions.map((a: { kind: string; name: string }) => `${a.kind}/${a.name}`)).toEqual(["Map/pod-rules", "Program/pod-filter", "Attachment/pod-filter-dst"]);
  });

  it("an identical state prints no changes and exits 0", async (ctx) => {
    needs(ctx, "xdpLink", "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(manifests(lab));
    await applyAll(root, dir);
    const r = cli(["--path", dir, "--bpffs", root]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/No changes: 5 objects as the manifests say\./);
  });
});
