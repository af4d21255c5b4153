// `bpfops demo` (npm start): the example manifests committed to a throwaway git repository and
// reconciled into a throwaway lab; under mixed traffic, a commit adding a filter rule and a commit
// upgrading the filter program are reconciled in turn, with sent / dropped / passed / lost for each.
import * as fs from "node:fs";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import git from "isomorphic-git";
import { createLab, type Lab } from "../lab/netlab.ts";
import { runTraffic, sum, type Flow, type TrafficReport } from "../lab/traffic.ts";
import { bpfObject } from "../lab/drills.ts";
import { packageRoot } from "../package-root.ts";
import { reconcileOnce, type ReconcileResult } from "../agent/reconcile-once.ts";
import { actionView } from "./plan-output.ts";
import { removePinTree } from "../kernel/pins.ts";
import { encodePodRule } from "../lab/pod-rules.ts";
import { renderPlanText } from "./plan-output.ts";

const LAB = "bpfops-lab"; // the example manifests name bpfops-lab-src and bpfops-lab-dst
const isDeath = (name: string) => name.startsWith("death");

function demoFlows(lab: Lab): Flow[] {
  return [
    { name: "good", dport: 5000, payload: Buffer.from("GET /healthz"), weight: 6 },
    { name: "good-5001", dport: 5001, payload: Buffer.from("xx harmless payload") },
    { name: "death-port", dport: 6666, payload: Buffer.from("exploit on 6666") },
    { name: "death-pattern", dport: 5001, payload: Buffer.concat([Buffer.from("xx"), Buffer.from("deadbeef", "hex"), Buffer.from(" payload of death")]) },
    { name: "death-host", dport: 5000, payload: Buffer.from("from a bad host"), source: lab.src.extraAddrs[0]! },
  ];
}

function report(title: string, flows: Flow[], r: TrafficReport): void {
  const legit = flows.filter((f) => !isDeath(f.name)).map((f) => f.name);
  const death = flows.filter((f) => isDeath(f.name)).map((f) => f.name);
  console.log(`\n${title}`);
  console.log(`  ${"flow".padEnd(14)}${"sent".padStart(9)}${"received".padStart(10)}`);
  for (const f of flows) console.log(`  ${f.name.padEnd(14)}${String(r.sent[f.name] ?? 0).padStart(9)}${String(r.received[f.name] ?? 0).padStart(10)}`);
  console.log(
    `  sent ${sum(r.sent)}  dropped ${sum(r.sent, death) - sum(r.received, death)} of ${sum(r.sent, death)} packets of death` +
      `  passed ${sum(r.received, legit)}  lost ${sum(r.sent, legit) - sum(r.received, legit)}  (${Math.round(sum(r.sent) / r.seconds)} pps)`,
  );
}

async function commit(dir: string, message: string): Promise<string> {
  for (const f of await git.statusMatrix({ fs, dir })) {
    if (f[1] !== f[2]) await git.add({ fs, dir, filepath: f[0] });
  }
  return git.commit({ fs, dir, message, author: { name: "bpfops demo", email: "demo@bpfops.invalid" } });
}

function changes(r: ReconcileResult): string {
  const t = r.timings;
  return `applied in ${(t.observeMs + t.planMs + t.executeMs).toFixed(1)} ms (kernel calls ${r.applied!.timings.kernelMs.toFixed(1)} ms)`;
}

export async function runDemo(opts: { pps: number; seconds: number }): Promise<void> {
  const count = Math.round(opts.pps * opts.seconds);
  const root = `/sys/fs/bpf/bpfops-demo-${process.pid}`;
  const repo = mkdtempSync(join(tmpdir(), "bpfops-demo-repo-"));
  const cache = join(tmpdir(), "bpfops-cache");
  let lab: Lab | undefined;
  const cleanup = () => {
    lab?.destroy();
    removePinTree(root);
    rmSync(repo, { recursive: true, force: true });
  };
  const onSignal = () => {
    cleanup();
    process.exit(130);
  };
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  try {
    sweepFixedLab();
    lab = createLab({ prefix: LAB, fixedNames: true });
    console.log(`lab: ${lab.src.netns} (${lab.src.addr}, bad host ${lab.src.extraAddrs[0]}) --veth--> ${lab.dst.netns} (${lab.dst.addr})`);

    // The manifests repository: the example manifests and the BPF sources they compile.
    cpSync(join(packageRoot(), "manifests/demo"), join(repo, "manifests/demo"), { recursive: true });
    for (const f of readdirSync(bpfObject("."))) if (f.endsWith(".bpf.c") || (f.endsWith(".h") && f !== "vmlinux.h")) cpSync(bpfObject(f), join(repo, "bpf", f));
    await git.init({ fs, dir: repo, defaultBranch: "main" });
    let rev = await commit(repo, "example manifests");

    const reconcile = (): Promise<ReconcileResult> => reconcileOnce({ kind: "git", repo, ref: "main", path: "manifests/demo" }, { mode: "apply", root, labels: {}, cacheDir: cache });
    const first = await reconcile();
    console.log(`\nreconcile ${rev.slice(0, 12)} into ${root}:`);
    console.log(renderPlanText(first.plan, { source: `${repo}/manifests/demo`, revision: rev, bpffsRoot: root }, undefined, { colour: !!process.stdout.isTTY, showUnchanged: false }).split("\n").slice(1).join("\n"));
    console.log(`  ${changes(first)}`);

    const flows = demoFlows(lab);
    report("1. the example revision under mixed traffic (death-host is not in the rules yet)", flows, await runTraffic(lab, { flows, pps: opts.pps, count }));

    // Commit 2: a rule for the bad host, as an initial entry of the pinned rules map.
    const filter = join(repo, "manifests/demo/pod-filter.yaml");
    const rule = encodePodRule({ action: "drop", source: `${lab.src.extraAddrs[0]}/32` }).toString("hex");
    writeFileSync(filter, readFileSync(filter, "utf8").replace("---\napiVersion: bpfops.dev/v1alpha1\nkind: Program", `    # drop everything from the bad host\n    - key: 2\n      value: hex:${rule}\n---\napiVersion: bpfops.dev/v1alpha1\nkind: Program`));
    rev = await commit(repo, "drop the bad host");
    let applied: ReconcileResult | undefined;
    const half = async () => {
      await new Promise((r) => setTimeout(r, (opts.seconds * 1000) / 2));
      applied = await reconcile();
    };
    const r2 = await runTraffic(lab, { flows, pps: opts.pps, count, during: half });
    report(`2. commit ${rev.slice(0, 12)} "drop the bad host" reconciled mid-stream: ${applied!.plan.actions.filter((a) => a.op !== "unchanged").map((a) => `${a.op} ${a.kind}/${a.name}`).join(", ")}; ${changes(applied!)}`, flows, r2);
    console.log("  death-host got through only until the rule landed");

    // Commit 3: a new version of the filter program, swapped in with one BPF_LINK_UPDATE.
    writeFileSync(filter, readFileSync(filter, "utf8").replace("filter_version: 1", "filter_version: 2"));
    rev = await commit(repo, "pod-filter v2");
    const r3 = await runTraffic(lab, { flows, pps: opts.pps, count, during: half });
    const swaps = applied!.plan.actions.filter((a) => a.op === "swap").map((a) => actionView(a)).map((v) => `${v.kind}/${v.name} ${v.where} (${v.strategy})`);
    report(`3. commit ${rev.slice(0, 12)} "pod-filter v2" reconciled mid-stream: swap ${swaps.join(", ")}; ${changes(applied!)}`, flows, r3);

    const again = await reconcile();
    console.log(`\na fourth reconcile of the same commit: ${again.plan.changes ? "changes?!" : "no changes"}`);
  } finally {
    cleanup();
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
  }
  console.log("lab removed: namespaces, links, programs, pins and the repository are gone");
}

/** Removes the fixed-name lab namespaces a killed demo left behind (they carry the demo's names). */
function sweepFixedLab(): void {
  for (const ns of [`${LAB}-src`, `${LAB}-dst`]) {
    if (fs.existsSync(`/var/run/netns/${ns}`)) execFileSync("ip", ["netns", "del", ns]);
  }
}
