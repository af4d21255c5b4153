// `bpfops reconcile --dry-run`: fetch the manifests (a directory or a git ref), build the desired
// state, observe the kernel, print the plan and, with --verify, the verifier's verdicts. Changes
// nothing. Exit: 0 no changes, 1 changes, 2 bad input or error, 3 a program the verifier rejects.
import { relative, resolve } from "node:path";
import { tmpdir } from "node:os";
import { accessSync, constants } from "node:fs";
import { directoryTree, gitTopLevel, gitTree, type RepoTree } from "../sources/repo-tree.ts";
import { buildRevision, type Build } from "../agent/build.ts";
import { observeState } from "../kernel/observe-state.ts";
import { plan } from "../core/plan.ts";
import { hasBpfPrivileges, verifyPrograms, type VerifyResult } from "../kernel/verify.ts";
import { BpfopsError } from "../core/errors.ts";
import { planJson, renderPlanText, type PlanContext } from "./plan-output.ts";
import { applyRevision, appliedMs } from "../agent/apply.ts";
import { acquireHostLock } from "../kernel/host-lock.ts";

export interface ReconcileOptions {
  dryRun?: boolean;
  path?: string;
  repo?: string;
  ref?: string;
  verify?: boolean;
  output: "text" | "json";
  bpffs: string;
  labels?: string;
  cache?: string;
  showUnchanged?: boolean;
  /** wait for another reconcile of the same root to finish (default), or fail at once */
  wait?: boolean;
}

export function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? "").split(",").filter(Boolean)) {
    const [k, v, ...rest] = part.split("=");
    if (!k || v === undefined || rest.length) throw new BpfopsError("InvalidArgument", `--labels: "${part}" is not key=value`);
    out[k.trim()] = v.trim();
  }
  return out;
}

function defaultCacheDir(): string {
  try {
    accessSync("/var/cache", constants.W_OK);
    return "/var/cache/bpfops";
  } catch {
    return resolve(tmpdir(), "bpfops-cache");
  }
}

async function openSource(opts: ReconcileOptions, cacheDir: string): Promise<{ tree: RepoTree; manifestDir: string }> {
  if (opts.repo) {
    return { tree: await gitTree(opts.repo, opts.ref ?? "HEAD", `${cacheDir}/git`), manifestDir: opts.path ?? "." };
  }
  const dir = resolve(opts.path ?? ".");
  // Objects may live beside the manifests' directory (../bpf/x.bpf.c): the repository, not the
  // directory, is the boundary they must stay within.
  const top = (await gitTopLevel(dir)) ?? dir;
  return { tree: directoryTree(top), manifestDir: relative(top, dir) || "." };
}

/** Where the plan came from, for its header and JSON. */
function planContext(tree: RepoTree, manifestDir: string, build: Build, root: string): PlanContext {
  return { source: manifestDir === "." ? tree.describe : `${tree.describe}/${manifestDir}`, ...(build.revision ? { revision: build.revision } : {}), bpffsRoot: root };
}

export async function runReconcile(opts: ReconcileOptions): Promise<number> {
  if (!opts.dryRun) return runApply(opts);
  if (opts.verify && !hasBpfPrivileges()) {
    throw new BpfopsError("PermissionDenied", "--verify loads programs into the kernel verifier and needs CAP_BPF (or CAP_SYS_ADMIN): run as root, or drop --verify for the plan alone");
  }
  const cacheDir = opts.cache ?? defaultCacheDir();
  const { tree, manifestDir } = await openSource(opts, cacheDir);
  const build = buildRevision(tree, { manifestDir, labels: parseLabels(opts.labels), cacheDir });
  const root = resolve(opts.bpffs);
  const observed = observeState(root, build.desired);
  const p = plan(build.desired, observed);
  let verify: VerifyResult[] | undefined;
  if (opts.verify) {
    const changed = new Set(p.actions.filter((a) => a.kind === "Program" && a.op === "load").map((a) => a.name));
    verify = await verifyPrograms(build.desired.programs.filter((d) => changed.has(d.name)), build.objects, root);
  }
  const ctx = planContext(tree, manifestDir, build, root);
  if (opts.output === "json") console.log(JSON.stringify(planJson(p, ctx, verify), null, 2));
  else console.log(renderPlanText(p, ctx, verify, { colour: !!process.stdout.isTTY && !process.env.NO_COLOR, showUnchanged: opts.showUnchanged ?? true }));
  if (verify?.some((v) => v.verdict !== "accepted")) return 3;
  return p.changes ? 1 : 0;
}

/** `bpfops reconcile`: apply the plan (prepare, commit, prune) under the host's reconcile lock. */
async function runApply(opts: ReconcileOptions): Promise<number> {
  if (!hasBpfPrivileges()) throw new BpfopsError("PermissionDenied", "reconcile changes the kernel and needs CAP_BPF and CAP_NET_ADMIN: run as root (or use --dry-run)");
  const cacheDir = opts.cache ?? defaultCacheDir();
  const { tree, manifestDir } = await openSource(opts, cacheDir);
  const build = buildRevision(tree, { manifestDir, labels: parseLabels(opts.labels), cacheDir });
  const root = resolve(opts.bpffs);
  const lock = acquireHostLock(root, { wait: opts.wait ?? true });
  try {
    const killAt = process.env.BPFOPS_KILL_BEFORE_STEP;
    const report = await applyRevision(build, root, { ...(build.revision ? { revision: build.revision } : {}), ...(killAt ? { killBeforeStep: Number(killAt) } : {}) });
    const ctx = planContext(tree, manifestDir, build, root);
    if (opts.output === "json") console.log(JSON.stringify({ ...planJson(report.plan, ctx, undefined), applied: true, timings: report.timings, notes: report.notes }, null, 2));
    else {
      console.log(renderPlanText(report.plan, ctx, undefined, { colour: !!process.stdout.isTTY && !process.env.NO_COLOR, showUnchanged: false }));
      for (const n of report.notes) console.log(`note: ${n}`);
      const t = report.timings;
      if (report.plan.changes) console.log(`applied in ${appliedMs(t).toFixed(1)} ms (prepare ${t.prepareMs.toFixed(1)}, commit ${t.commitMs.toFixed(1)}, prune ${t.pruneMs.toFixed(1)}; kernel calls ${t.kernelMs.toFixed(1)})`);
    }
    return 0;
  } finally {
    lock.release();
  }
}
