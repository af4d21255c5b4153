// The reconcile engine's correctness against the real kernel: program versions rebound after a
// crash that replaced a map, compare-and-swap against the program the plan saw, ownership from
// provenance, safe defaults (empty revisions, missing paths) and one lock per root, whatever its spelling.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { reconcileOnce } from "../../reconciler/agent/reconcile-once.ts";
import { execute } from "../../reconciler/host/execute.ts";
import { realKernelPort } from "../../reconciler/host/kernel-port.ts";
import { acquireHostLock } from "../../reconciler/host/host-lock.ts";
import { listPins, openPinnedLink, openPinnedMap, openPinnedProgram } from "../../reconciler/kernel/pins.ts";
import { MapHandle, ProgramHandle } from "../../reconciler/kernel/handles.ts";
import { loadObject } from "../../reconciler/kernel/object.ts";
import { queryXdpHook } from "../../reconciler/kernel/observe.ts";
import { layout } from "../../reconciler/core/layout.ts";
import { MapType } from "../../schemas/kernel-names.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { runTraffic, sum } from "../../reconciler/lab/traffic.ts";
import { BPF, closeAtEnd, needs, tempCgroup, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo, HDR, planRepo, tempRepo, writeRepo } from "./repos.ts";

const cli = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, ["bin/bpfops.cjs", "reconcile", ...args], { encoding: "utf8", env: { ...process.env, ...env } });

/** A filter bound to a Map whose size changes between v1 and v2 (onChange: migrate), on lab.dst. */
function boundFilter(lab: Lab, v: 1 | 2): Record<string, string> {
  return {
    "m.yaml": `${HDR}kind: Map\nmetadata: { name: pod-rules }\nspec: { type: array, keySize: 4, valueSize: 32, maxEntries: ${v === 1 ? 64 : 64}, onChange: migrate }\n---
${HDR}kind: Map\nmetadata: { name: scratch }\nspec: { type: hash, keySize: 4, valueSize: 8, maxEntries: ${v === 1 ? 16 : 32}, onChange: migrate }\n---
${HDR}kind: Program\nmetadata: { name: pod-filter }\nspec: { object: objs/pod_filter.o, program: pod_filter, globals: { filter_version: ${v} }, maps: { pod_rules: { bind: pod-rules } } }\n---
${HDR}kind: Program\nmetadata: { name: stage }\nspec: { object: objs/xdp_stage.o, program: xdp_stage, globals: { stage_index: 0 }, maps: { xdp_chain: { bind: slots } } }\n---
${HDR}kind: Map\nmetadata: { name: slots }\nspec: { type: prog_array, keySize: 4, valueSize: 4, maxEntries: ${v === 1 ? 4 : 8}, onChange: recreate }\n---
${HDR}kind: Attachment\nmetadata: { name: pod-filter }\nspec: { program: pod-filter, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n`,
  };
}

describe("reconcile engine", () => {
  it("after a kill in prepare of a revision that replaces a map, the restart reloads versions bound to the discarded map", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(boundFilter(lab, 1));
    await applyRepo(dir, root);
    writeRepo(dir, boundFilter(lab, 2));
    const plan = await planRepo(dir, root);
    const prepareSteps = plan.actions.filter((a) => a.op === "load" || a.op === "migrate" || a.op === "recreate" || a.op === "create").length;
    // Killed after prepare loaded every v2 program (bound to the slots map prepared beside the old one), before any switch.
    const killed = cli(["--path", dir, "--bpffs", root, "--cache", `${dir}/.cache`], { BPFOPS_KILL_BEFORE_STEP: String(prepareSteps) });
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    const r = cli(["--path", dir, "--bpffs", root, "--cache", `${dir}/.cache`]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/Program\/stage\s+load: .*Map\/slots is replaced/);
    // Every pinned program version runs against the maps pinned now.
    const slots = closeAtEnd(openPinnedMap(layout.map(root, "slots")));
    const rules = closeAtEnd(openPinnedMap(layout.map(root, "pod-rules")));
    for (const p of listPins(`${root}/programs`)) {
      const h = closeAtEnd(openPinnedProgram(p.path));
      const want = p.path.includes("/stage/") ? slots.id : rules.id;
      expect(h.info().mapIds, p.path).toContain(want);
    }
    expect(slots.info().maxEntries).toBe(8);
    const dry = cli(["--dry-run", "--path", dir, "--bpffs", root, "--cache", `${dir}/.cache`]);
    expect(dry.status, dry.stdout).toBe(0);
  });

  it("a swap is a compare-and-swap against the program the plan observed: a program swapped in meanwhile fails the revision with Conflict", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(boundFilter(lab, 1));
    await applyRepo(dir, root);
    writeRepo(dir, { "m.yaml": boundFilter(lab, 1)["m.yaml"]!.replace("filter_version: 1", "filter_version: 3") });
    const r = await reconcileOnce({ kind: "directory", path: dir }, { mode: "dry-run", root, labels: {}, cacheDir: `${dir}/.cache` });
    // Another tool swaps the link's program between plan and commit.
    const link = closeAtEnd(openPinnedLink(`${root}/links/pod-filter/xdp@${lab.dst.netns}@dst0`));
    const other = await loadObject(BPF("pod_filter.o"), { pinRoot: "/nonexistent", name: "pod_filter" }, (o) => {
      o.setGlobal("filter_version", 9);
      for (const m of o.maps()) if (!m.internal) o.setMapPinPath(m.name, null);
    });
    const otherProg = closeAtEnd(other.program("pod_filter"));
    other.close();
    link.update(otherProg);
    await expect(execute(r.plan, realKernelPort(root), { objects: r.build.objects })).rejects.toMatchObject({ code: "Conflict" });
    expect(queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId).toBe(otherProg.id);
    expect(listPins(`${root}/programs/pod-filter`)).toHaveLength(1); // the version prepared for the refused revision is gone
  });

  it("pins under the root that bpfops did not make are reported and never pruned or overwritten", async (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    const dir = tempRepo({ "m.yaml": `${HDR}kind: Map\nmetadata: { name: ours }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 4 }\n` });
    await applyRepo(dir, root);
    const theirs = MapHandle.create({ type: MapType.hash, keySize: 4, valueSize: 4, maxEntries: 4 }, "theirs");
    theirs.pin(layout.map(root, "theirs"));
    theirs.close();
    const plan = await planRepo(dir, root);
    expect(plan.actions.map((a) => `${a.op} ${a.kind}/${a.name}`)).toEqual(["unchanged Map/ours", "unowned Map/theirs"]);
    expect(plan.changes).toBe(false);
    // A revision that claims that name is refused; one that drops everything leaves their pin alone.
    writeRepo(dir, { "m.yaml": `${HDR}kind: Map\nmetadata: { name: theirs }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 4 }\n` });
    await expect(applyRepo(dir, root)).rejects.toMatchObject({ code: "Conflict" });
    writeRepo(dir, {});
    await applyRepo(dir, root, { allowEmpty: true });
    expect(listPins(root).map((p) => p.path.slice(root.length))).toEqual(["/maps/theirs"]);
    const status = spawnSync(process.execPath, ["bin/bpfops.cjs", "status", "--bpffs", root], { encoding: "utf8" });
    expect(status.stdout).toMatch(/^maps\/theirs\s+Unowned\s+-\s+-\s+-\s+.*not made by bpfops/m);
  });

  it("refuses a revision that would prune everything unless --allow-empty, which then leaves the root clean", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(boundFilter(lab, 1));
    await applyRepo(dir, root);
    const before = listPins(root).map((p) => p.path);
    writeRepo(dir, {});
    const dry = cli(["--dry-run", "--path", dir, "--bpffs", root]);
    expect([dry.status, dry.stderr]).toEqual([2, expect.stringMatching(/would prune all \d+ objects .* --allow-empty/)]);
    const refused = cli(["--path", dir, "--bpffs", root]);
    expect(refused.status).toBe(2);
    expect(listPins(root).map((p) => p.path)).toEqual(before);
    const allowed = cli(["--path", dir, "--bpffs", root, "--allow-empty"]);
    expect(allowed.status, allowed.stderr).toBe(0);
    expect(readdirSync(root)).toEqual([]);
  });

  it("a Map with prune: false stays pinned, with its data, when its manifest leaves the repository", async (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    const keepDoc = `${HDR}kind: Map\nmetadata: { name: keepme }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 4, prune: false }\n`;
    const other = `${HDR}kind: Map\nmetadata: { name: other }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 4 }\n`;
    const dir = tempRepo({ "m.yaml": keepDoc + "---\n" + other });
    await applyRepo(dir, root);
    writeRepo(dir, { "m.yaml": other });
    await applyRepo(dir, root);
    expect(listPins(root).map((p) => p.path.slice(root.length))).toEqual(["/maps/keepme", "/maps/other", "/state"]);
  });

  it("migrate under 100k pps loses no count the datapath writes: what lands in the old map during the switch is summed over", async (ctx) => {
    needs(ctx, "tcxLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const counter = (maxEntries: number) => ({
      "c.yaml": `${HDR}kind: Map\nmetadata: { name: counts }\nspec: { type: percpu_array, keySize: 4, valueSize: 16, maxEntries: ${maxEntries}, onChange: migrate, merge: sum }\n---
${HDR}kind: Program\nmetadata: { name: counter }\nspec: { object: objs/tcx_counter.o, program: tcx_counter, maps: { tcx_counts: { bind: counts } } }\n---
${HDR}kind: Attachment\nmetadata: { name: counter }\nspec: { program: counter, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }\n`,
    });
    const dir = tempRepo(counter(4));
    await applyRepo(dir, root);
    writeRepo(dir, counter(8));
    const flows = [{ name: "good", dport: 5000, payload: Buffer.from("count me") }];
    let notes: string[] = [];
    const traffic = await runTraffic(lab, {
      flows,
      pps: 100_000,
      count: 150_000,
      during: async () => {
        await new Promise((r) => setTimeout(r, 300));
        notes = (await applyRepo(dir, root)).applied!.notes;
      },
    });
    const m = closeAtEnd(openPinnedMap(layout.map(root, "counts")));
    expect(m.info().maxEntries).toBe(8);
    let counted = 0n;
    for (const e of m.entries()) for (const cpu of m.splitPerCpu(e.value)) counted += cpu.readBigUInt64LE(0);
    // The counter counts at ingress, before the receiving socket: what a loaded socket dropped
    // was counted too, and is added back (the socket reports its drops exactly).
    expect(counted).toBe(BigInt(sum(traffic.received) + traffic.socketDrops));
    expect(sum(traffic.received) + traffic.socketDrops).toBe(sum(traffic.sent));
    expect(notes.join("\n")).toMatch(/Map\/counts: migrated 8? ?\d* ?entries/);
  });

  it.each([
    ["no --path and no --repo", [], /--path DIR/],
    ["a --path that does not exist", ["--path", "/nonexistent-bpfops-dir"], /no such directory/],
    ["an unknown --output", ["--path", ".", "--output", "yaml"], /Allowed choices are text, json/],
    ["--ref without --repo", ["--path", ".", "--ref", "main"], /--ref needs --repo/],
  ])("%s is an error (exit 2) that changes nothing", (_, args, message) => {
    const r = cli(["--dry-run", "--bpffs", "/sys/fs/bpf/bpfops-test-none", ...args]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it.each([
    ["a symlink", (d: string) => symlinkSync("/tmp", d), /is a symlink/],
    ["a file", (d: string) => writeFileSync(d, "x"), /is not a directory/],
    ["a directory others can write to", (d: string) => {
      mkdirSync(d);
      chmodSync(d, 0o777);
    }, /writable by nobody else/],
  ])("a lock directory that is %s is a clear error, and nothing changes", (_, make, message) => {
    const parent = mkdtempSync(join(tmpdir(), "bpfops-lockdir-"));
    onTestFinished(() => rmSync(parent, { recursive: true, force: true }));
    const lockDir = join(parent, "run-bpfops");
    make(lockDir);
    const root = tempPinRoot();
    const dir = tempRepo({ "m.yaml": `${HDR}kind: Map\nmetadata: { name: t }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 4 }\n` });
    const r = cli(["--path", dir, "--bpffs", root], { BPFOPS_LOCK_DIR: lockDir });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(readdirSync(root)).toEqual([]);
  });

  it("a hook another bpfops root holds is a conflict between roots, even with takeover", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const rootA = tempPinRoot();
    const rootB = tempPinRoot();
    const files = (takeover: boolean) => ({
      "m.yaml": `${HDR}kind: Program\nmetadata: { name: f }\nspec: { object: objs/pod_filter.o, program: pod_filter }\n---
${HDR}kind: Attachment\nmetadata: { name: f }\nspec: { program: f, takeover: ${takeover}, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n`,
    });
    await applyRepo(tempRepo(files(false)), rootA);
    const held = queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId;
    const other = tempRepo(files(true));
    const plan = await planRepo(other, rootB);
    const a = plan.actions.find((x) => x.kind === "Attachment")!;
    expect(a.op).toBe("conflict");
    expect(a.reason).toContain(`another bpfops root (${rootA})`);
    await expect(applyRepo(other, rootB)).rejects.toMatchObject({ code: "Conflict" });
    expect(queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId).toBe(held);
  });

  it("a glob over a network namespace that does not exist is a warning in the plan", async (ctx) => {
    needs(ctx);
    const dir = tempRepo({
      "m.yaml": `${HDR}kind: Program\nmetadata: { name: f }\nspec: { object: objs/pod_filter.o, program: pod_filter }\n---
${HDR}kind: Attachment\nmetadata: { name: f }\nspec: { program: f, hook: { type: xdp, netns: bpfops-test-no-such-ns, interfaces: ["eth*"] } }\n`,
    });
    const plan = await planRepo(dir, tempPinRoot());
    expect(plan.warnings).toEqual(["Attachment/f: network namespace bpfops-test-no-such-ns does not exist, so eth* matches no interface"]);
  });

  it("a program pin replaced by another program is drift: reported, reloaded, and the stranger never attached", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(boundFilter(lab, 1));
    await applyRepo(dir, root);
    const [pin] = listPins(`${root}/programs/pod-filter`).map((p) => p.path);
    const stranger = await loadObject(BPF("pod_filter.o"), { pinRoot: "/nonexistent", name: "pod_filter" }, (o) => {
      o.setGlobal("filter_version", 7);
      for (const m of o.maps()) if (!m.internal) o.setMapPinPath(m.name, null);
    });
    const strangerProg = closeAtEnd(stranger.program("pod_filter"));
    stranger.close();
    spawnSync("rm", [pin!]);
    strangerProg.pin(pin!);
    const plan = await planRepo(dir, root);
    expect(plan.actions.find((a) => a.kind === "Program" && a.name === "pod-filter")).toMatchObject({ op: "load", reason: expect.stringMatching(/drift: the pin holds prog id \d+, bpfops pinned prog id \d+/) });
    await applyRepo(dir, root);
    const repinned = closeAtEnd(openPinnedProgram(pin!));
    expect(repinned.id).not.toBe(strangerProg.id);
    expect(queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId).toBe(repinned.id);
    expect((await planRepo(dir, root)).changes).toBe(false);
  });

  it("a map pin replaced by another map is drift: a fresh map replaces it and the programs are rebound", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(boundFilter(lab, 1));
    await applyRepo(dir, root);
    const pin = layout.map(root, "pod-rules");
    const other = MapHandle.create({ type: MapType.array, keySize: 4, valueSize: 32, maxEntries: 64 }, "not_ours");
    spawnSync("rm", [pin]);
    other.pin(pin);
    other.close();
    const plan = await planRepo(dir, root);
    expect(plan.actions.filter((a) => a.op !== "unchanged").map((a) => `${a.op} ${a.kind}/${a.name}`)).toEqual(expect.arrayContaining(["recreate Map/pod-rules", "load Program/pod-filter"]));
    await applyRepo(dir, root);
    const rules = closeAtEnd(openPinnedMap(pin));
    const running = closeAtEnd(ProgramHandle.fromId(queryXdpHook({ ifname: "dst0", netns: lab.dst.netns }).progId));
    expect(running.info().mapIds).toContain(rules.id);
    expect((await planRepo(dir, root)).changes).toBe(false);
  });

  it("status shows a link whose interface is gone as not enforcing, and --check exits 2; run counts are unknown without stats", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const root = tempPinRoot();
    await applyRepo(tempRepo(boundFilter(lab, 1)), root);
    const ok = spawnSync(process.execPath, ["bin/bpfops.cjs", "status", "--bpffs", root, "--check"], { encoding: "utf8" });
    expect(ok.status, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/run count unknown \(BPF stats off/);
    spawnSync("ip", ["-n", lab.dst.netns, "link", "del", "dst0"]);
    const gone = spawnSync(process.execPath, ["bin/bpfops.cjs", "status", "--bpffs", root, "--check"], { encoding: "utf8" });
    expect(gone.status).toBe(2);
    expect(gone.stdout).toMatch(/^pod-filter\s+Attachment\s+.*\s+False\s+.*NOT ENFORCING/m);
  });

  it("status during reconciles never fails on a pin caught mid-rename", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(boundFilter(lab, 1));
    await applyRepo(dir, root);
    const statuses: Array<number | null> = [];
    let stop = false;
    const poll = (async () => {
      while (!stop) {
        const r = await new Promise<number | null>((res) => spawn(process.execPath, ["bin/bpfops.cjs", "status", "--bpffs", root, "--output", "json"], { stdio: "ignore" }).on("exit", res));
        statuses.push(r);
      }
    })();
    for (let i = 0; i < 8; i++) {
      writeRepo(dir, boundFilter(lab, ((i % 2) + 1) as 1 | 2));
      await applyRepo(dir, root);
    }
    stop = true;
    await poll;
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 0)).toBe(true);
  });

  it("a program type the kernel refuses (EPERM for fentry here) is NotSupported under --verify, not a verifier rejection", async (ctx) => {
    needs(ctx);
    const dir = tempRepo({ "m.yaml": `${HDR}kind: Program\nmetadata: { name: f }\nspec: { object: objs/t_fentry.o, program: on_nanosleep }\n` });
    const r = cli(["--dry-run", "--verify", "--output", "json", "--path", dir, "--bpffs", tempPinRoot()]);
    const out = JSON.parse(r.stdout) as { verify: Array<{ verdict: string; code: string; error: string }> };
    expect(out.verify).toEqual([expect.objectContaining({ verdict: "error", code: "NotSupported", error: expect.stringMatching(/does not allow this program type/) })]);
    expect(r.status).toBe(2);
  });

  it("a hook in a network namespace that does not exist is blocked, and the plan says the namespace is missing", async (ctx) => {
    needs(ctx);
    const dir = tempRepo({
      "m.yaml": `${HDR}kind: Program\nmetadata: { name: f }\nspec: { object: objs/pod_filter.o, program: pod_filter }\n---
${HDR}kind: Attachment\nmetadata: { name: f }\nspec: { program: f, hook: { type: xdp, netns: bpfops-test-no-such-ns, interfaces: [eth0] } }\n`,
    });
    const plan = await planRepo(dir, tempPinRoot());
    expect(plan.actions.find((a) => a.kind === "Attachment")).toMatchObject({ op: "blocked", reason: "network namespace bpfops-test-no-such-ns does not exist (will retry)" });
  });

  it("a pinned object map a new version resizes is a conflict in the plan, and apply changes nothing", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(boundFilter(lab, 1));
    await applyRepo(dir, root);
    const before = listPins(root).map((p) => p.path);
    writeRepo(dir, { "m.yaml": boundFilter(lab, 2)["m.yaml"]!.replace("maps: { pod_rules: { bind: pod-rules } }", "maps: { pod_rules: { bind: pod-rules }, pod_stats: { pin: true, maxEntries: 128 } }") });
    const plan = await planRepo(dir, root);
    expect(plan.actions.find((a) => a.kind === "Program" && a.name === "pod-filter")).toMatchObject({ op: "conflict", reason: expect.stringMatching(/its pinned map pod_stats .*\(maxEntries \d+ -> 128\)/) });
    await expect(applyRepo(dir, root)).rejects.toMatchObject({ code: "Conflict" });
    expect(listPins(root).map((p) => p.path)).toEqual(before);
  });

  it("a cgroup path too long for a bpffs name is hashed in the pin, and status shows it in full", async (ctx) => {
    needs(ctx);
    let cg = tempCgroup();
    const made: string[] = [];
    for (const part of ["a".repeat(90), "b".repeat(90), "c".repeat(90)]) {
      cg = join(cg, part);
      mkdirSync(cg);
      made.unshift(cg);
    }
    // Innermost first, before tempCgroup removes its own directory.
    onTestFinished(() => made.forEach((d) => rmdirSync(d)));
    const root = tempPinRoot();
    await applyRepo(tempRepo({ "m.yaml": `${HDR}kind: Program\nmetadata: { name: cg }\nspec: { object: objs/t_cgroup_skb.o, program: cg_egress }\n---
${HDR}kind: Attachment\nmetadata: { name: cg }\nspec: { program: cg, hook: { type: cgroup, path: ${cg}, attachType: cgroup_inet_egress } }\n` }), root);
    const [link] = listPins(`${root}/links/cg`).map((p) => p.path);
    expect(link!.split("/").pop()!.length).toBeLessThanOrEqual(200);
    const status = spawnSync(process.execPath, ["bin/bpfops.cjs", "status", "--bpffs", root], { encoding: "utf8" });
    expect(status.stdout).toContain(`cgroup cgroup_inet_egress ${cg}  `);
    expect(status.stdout).toMatch(/True\s+cgroup link running prog \d+/);
  });

  it.for([
    ["fentry", "fentry: { type: fentry, function: do_nanosleep }", /fentry is not supported on this kernel: fentry load: EPERM/],
    ["lsm", "lsm: { type: lsm, name: file_open }", /lsm is not supported on this kernel: LSM load: EPERM/],
    ["kprobe", "kprobe: { type: kprobe, function: do_nanosleep }", /kprobe is not supported on this kernel: no kprobe PMU .*CONFIG_KPROBES off/],
  ] as Array<[string, string, RegExp]>)("a %s hook this kernel cannot attach is blocked in the plan with the probe's reason", async ([type, hookYaml, reason], ctx) => {
    needs(ctx);
    const progType = type === "fentry" ? "tracing" : type;
    const hook = hookYaml.slice(hookYaml.indexOf("{"));
    const dir = tempRepo({
      "m.yaml": `${HDR}kind: Program\nmetadata: { name: p }\nspec: { object: objs/tp_counter.o, program: count_getppid, type: ${progType} }\n---
${HDR}kind: Attachment\nmetadata: { name: a }\nspec: { program: p, hook: ${hook} }\n`,
    });
    const plan = await planRepo(dir, tempPinRoot());
    expect(plan.actions.find((a) => a.kind === "Attachment")).toMatchObject({ op: "blocked", reason: expect.stringMatching(reason) });
  });

  it("one lock per root, whatever its spelling", async (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    mkdirSync(`${root}/sub`);
    const lock = await acquireHostLock(root, { wait: false });
    try {
      const dir = tempRepo({ "m.yaml": `${HDR}kind: Map\nmetadata: { name: t }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 4 }\n` });
      const r = cli(["--path", dir, "--bpffs", `${root}/sub/..//`, "--no-wait"]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/another reconcile of .* is running/);
    } finally {
      lock.release();
    }
    expect(readdirSync("/run/bpfops").filter((f) => f.includes("reconcile-"))).not.toContain(lock.path.split("/").pop());
  });
});
