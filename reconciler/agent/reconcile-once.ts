// reconcileOnce(source, options): the one place the reconcile steps are wired together, for the
// CLI's dry-run and apply, the demo and the agent loop:
//   fetch -> build -> observe -> plan -> (verify) -> execute -> report
// Each step has typed input and output and is timed; the whole run is cancellable with an
// AbortSignal (up to the commit, which is finished or rolled back, never left half done).
import { relative, resolve } from "node:path";
import { directoryTree, gitTopLevel, gitTree, type GitAccess, type RepoTree } from "../sources/repo-tree.ts";
import { buildRevision, type Build } from "./build.ts";
import { bundleTree } from "../sources/bundle-tree.ts";
import type { Bundle } from "../fleet/bundle.ts";
import { observeState } from "../host/observe-state.ts";
import { recoverInterrupted } from "../host/recover.ts";
import { acquireHostLock } from "../host/host-lock.ts";
import { execute, type ExecuteReport } from "../host/execute.ts";
import { realKernelPort } from "../host/kernel-port.ts";
import { verifyPrograms, type VerifyResult } from "../host/verify.ts";
import { resolveHostRefs } from "../host/resolve-refs.ts";
import { ensureBpffsDir } from "../kernel/pins.ts";
import { plan as makePlan, refusals, survivors, type Plan, type PlanAction } from "../core/plan.ts";
import type { ObservedState } from "../core/observed.ts";
import { BpfopsError } from "../core/errors.ts";
import { describeHook } from "../core/layout.ts";
import type { OnProgress } from "../core/progress.ts";

/** Where a revision comes from: a directory (objects may live anywhere in its git work tree) or a git ref. */
export type RevisionSource =
  | { kind: "directory"; path: string }
  | { kind: "git"; repo: string; ref: string; path?: string; /** this commit of ref (the agent's pinned revision) */ commit?: string; auth?: GitAccess["auth"] }
  /** a fleet bundle, built once by the controller from revision */
  | { kind: "bundle"; bundle: Bundle; revision: string };

export interface ReconcileOnceOptions {
  mode: "dry-run" | "apply";
  /** the bpffs root bpfops owns */
  root: string;
  labels: Record<string, string>;
  cacheDir: string;
  /** bytes one Map may ask for; validation refuses bigger ones */
  mapMemoryBudget?: number;
  /** load every new or changed program into the verifier (dry-run) */
  verify?: boolean;
  /** allow a revision that prunes every owned object */
  allowEmpty?: boolean;
  /** wait for another reconcile of the root (default), or fail with LockHeld */
  wait?: boolean;
  signal?: AbortSignal;
  onLockWait?: (holderPid: string) => void;
  /** progress of compiling, verifying and applying, for a terminal */
  onProgress?: OnProgress;
  /**
   * The build of this same revision from an earlier run (the agent's drift checks): fetch and
   * build are skipped, observe, plan and execute run as always.
   */
  reuse?: { build: Build; context: RevisionContext };
  /** crash tests: called before every execute step */
  beforeStep?: (n: number, step: string) => void;
}

export interface RevisionContext {
  /** directory or url@ref, with the manifests directory */
  source: string;
  revision?: string;
  bpffsRoot: string;
}

export interface ReconcileResult {
  context: RevisionContext;
  build: Build;
  observed: ObservedState;
  plan: Plan;
  verify?: VerifyResult[];
  /** what execute did (apply mode) */
  applied?: ExecuteReport;
  /** recovery of a killed run (apply mode) */
  recovered: string[];
  timings: { fetchMs: number; buildMs: number; observeMs: number; planMs: number; verifyMs: number; executeMs: number };
}

export class ApplyRefusedError extends BpfopsError {
  readonly actions: PlanAction[];
  constructor(actions: PlanAction[]) {
    super(
      actions.some((a) => a.op === "conflict") ? "Conflict" : "Blocked",
      `the revision cannot be applied; nothing was changed:\n${actions.map((a) => `  ${a.kind}/${a.name}${"hook" in a ? ` (${describeHook(a.hook.hook)})` : ""}: ${a.reason}${a.source ? ` [${a.source}]` : ""}`).join("\n")}`,
      { errorClass: actions.every((a) => a.op === "blocked") ? "Waiting" : "Stalled" },
    );
    this.actions = actions;
  }
}

export class EmptyRevisionError extends BpfopsError {
  constructor(pruned: number, source: string) {
    super("EmptyRevision", `${source} selects nothing for this host, so the plan would prune all ${pruned} objects bpfops owns here; nothing was changed (pass --allow-empty if that is what you want)`);
  }
}

const now = () => process.hrtime.bigint();
const since = (t0: bigint) => Number(now() - t0) / 1e6;

/** fetch: the revision as a read-only tree, and the manifests directory in it. */
export async function fetchRevision(source: RevisionSource, cacheDir: string): Promise<{ tree: RepoTree; manifestDir: string }> {
  let tree: RepoTree;
  let manifestDir: string;
  if (source.kind === "bundle") {
    tree = bundleTree(source.bundle, source.revision);
    manifestDir = source.bundle.manifestDir;
  } else if (source.kind === "git") {
    tree = await gitTree(source.repo, source.ref, `${cacheDir}/git`, { ...(source.commit ? { commit: source.commit } : {}), ...(source.auth ? { auth: source.auth } : {}) });
    manifestDir = source.path ?? ".";
  } else {
    const dir = resolve(source.path);
    // Objects may live beside the manifests' directory (../bpf/x.bpf.c): the repository, not the
    // directory, is the boundary they must stay within.
    const top = (await gitTopLevel(dir)) ?? dir;
    try {
      tree = directoryTree(top);
    } catch {
      throw new BpfopsError("PathNotFound", `--path ${source.path}: no such directory`);
    }
    manifestDir = relative(top, dir) || ".";
  }
  if (!(await tree.hasDir(manifestDir))) throw new BpfopsError("PathNotFound", `--path ${manifestDir}: no such directory in ${tree.describe}`);
  return { tree, manifestDir };
}

/** Reconciles source (none with opts.reuse, whose build stands for it) into the kernel, or plans it (dry-run). */
export async function reconcileOnce(source: RevisionSource | undefined, opts: ReconcileOnceOptions): Promise<ReconcileResult> {
  const signal = opts.signal;
  const timings = { fetchMs: 0, buildMs: 0, observeMs: 0, planMs: 0, verifyMs: 0, executeMs: 0 };
  const root = resolve(opts.root);

  let t0 = now();
  let build: Build;
  let context: RevisionContext;
  if (opts.reuse) {
    ({ build, context } = opts.reuse);
  } else {
    if (!source) throw new Error("reconcileOnce: a source, or a build to reuse");
    const { tree, manifestDir } = await fetchRevision(source, opts.cacheDir);
    timings.fetchMs = since(t0);
    signal?.throwIfAborted();

    t0 = now();
    build = await buildRevision(tree, { manifestDir, labels: opts.labels, cacheDir: opts.cacheDir, ...(signal ? { signal } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), ...(opts.mapMemoryBudget ? { mapMemoryBudget: opts.mapMemoryBudget } : {}) });
    timings.buildMs = since(t0);
    signal?.throwIfAborted();
    context = { source: manifestDir === "." ? tree.describe : `${tree.describe}/${manifestDir}`, ...(build.revision ? { revision: build.revision } : {}), bpffsRoot: root };
  }

  const lock = opts.mode === "apply" ? await acquireHostLock(root, { wait: opts.wait ?? true, ...(signal ? { signal } : {}), ...(opts.onLockWait ? { onWait: opts.onLockWait } : {}) }) : null;
  try {
    let recovered: string[] = [];
    if (opts.mode === "apply") {
      ensureBpffsDir(root);
      recovered = recoverInterrupted(root);
    }
    t0 = now();
    // Interfaces that entries name, as ifindexes on this host.
    const desired = resolveHostRefs(build.desired);
    const observed = observeState(root, desired);
    timings.observeMs = since(t0);

    t0 = now();
    const plan = makePlan(desired, observed);
    timings.planMs = since(t0);
    const result: ReconcileResult = { context, build, observed, plan, recovered, timings };

    const pruned = plan.actions.filter((a) => a.op === "prune").length;
    const emptying = pruned > 0 && survivors(plan) === 0 && !opts.allowEmpty;

    if (opts.mode === "dry-run") {
      if (emptying) throw new EmptyRevisionError(pruned, context.source);
      if (opts.verify) {
        t0 = now();
        const changed = new Set(plan.actions.filter((a) => a.kind === "Program" && a.op === "load").map((a) => a.name));
        result.verify = await verifyPrograms(desired.programs.filter((d) => changed.has(d.name)), build.objects, root, opts.onProgress);
        timings.verifyMs = since(t0);
      }
      return result;
    }

    const refused = refusals(plan);
    if (refused.length) throw new ApplyRefusedError(refused);
    if (emptying) throw new EmptyRevisionError(pruned, context.source);
    signal?.throwIfAborted();
    t0 = now();
    result.applied = await execute(plan, realKernelPort(root), {
      objects: build.objects,
      ...(build.revision ? { revision: build.revision } : {}),
      ...(signal ? { signal } : {}),
      ...(opts.beforeStep ? { beforeStep: opts.beforeStep } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    timings.executeMs = since(t0);
    return result;
  } finally {
    lock?.release();
  }
}
