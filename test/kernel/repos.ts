// Throwaway manifests repositories for kernel tests: a temp directory with copies of the BPF
// objects, manifests written from templates, and builds of it; removed when the test ends.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import { reconcileOnce, type ReconcileOnceOptions } from "../../reconciler/agent/reconcile-once.ts";
import { actionView } from "../../reconciler/cli/plan-output.ts";
import { BPF } from "./harness.ts";
import { encodePodRule } from "../../reconciler/lab/pod-rules.ts";
import { podRules } from "../../reconciler/lab/drills.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";

export const HDR = "apiVersion: bpfops.dev/v1alpha1\n";
const OBJECTS = ["pod_filter.o", "examples/allow_policy.o", "examples/blocklist.o", "tcx_counter.o", "tp_counter.o", "xdp_dispatcher.o", "xdp_stage.o", "test/t_rejected.o", "test/t_cgroup_skb.o", "test/t_fentry.o", "test/t_redirect.o", "test/t_note_section.o", "test/t_globals.o", "test/t_tp_btf.o", "test/t_cgroup_sysctl.o", "test/t_tcx_order.o", "test/t_netfilter.o", "test/t_sk_lookup.o", "test/t_flow_dissector.o", "test/t_uprobe.o", "test/t_sk_msg.o", "test/t_socket_filter.o", "test/t_cgroup_sockopt.o", "test/t_collection.o", "test/t_perf_event.o", "test/t_xdp_shared.o", "test/t_sk_skb.o"];

/** A repository directory holding objs/<object>.o and the given manifest files. */
export function tempRepo(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "bpfops-repo-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "objs"));
  for (const o of OBJECTS) copyFileSync(BPF(o), join(dir, "objs", o.split("/").pop()!));
  writeRepo(dir, files);
  return dir;
}

/** Replaces every manifest in the repository with these. */
export function writeRepo(dir: string, files: Record<string, string>): void {
  for (const f of readdirSync(dir)) if (f.endsWith(".yaml")) rmSync(join(dir, f));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

type Extra = Partial<Omit<ReconcileOnceOptions, "mode" | "root">>;

async function run(mode: "dry-run" | "apply", dir: string, root: string, extra: Extra = {}) {
  const r = await reconcileOnce({ kind: "directory", path: dir }, { mode, root, labels: {}, cacheDir: join(dir, ".cache"), ...extra });
  // Tests read actions as their rendered view: operands flattened, as the JSON plan has them.
  return { ...r, typedPlan: r.plan, plan: { ...r.plan, actions: r.plan.actions.map(actionView) } };
}

/** reconcileOnce of the repository directory into root (apply). */
export const applyRepo = (dir: string, root: string, extra?: Extra) => run("apply", dir, root, extra);
/** reconcileOnce --dry-run: the plan, and nothing changed. */
export const planRepo = async (dir: string, root: string, extra?: Extra) => (await run("dry-run", dir, root, extra)).plan;

/** The pod-rules Map manifest: an array of 64 rules holding drills.podRules(lab) (rulesMaxEntries: its size). */
export function podRulesMap(lab: Lab, maxEntries = 64): string {
  const entries = podRules(lab).map((r, i) => `    - { key: ${i}, value: "hex:${encodePodRule(r).toString("hex")}" }`).join("\n");
  return `${HDR}kind: Map
metadata: { name: pod-rules }
spec:
  type: array
  keySize: 4
  valueSize: 32
  maxEntries: ${maxEntries}
  entries:
${entries}
`;
}
