// `bpfops reconcile [--dry-run]`: one reconcileOnce run from a directory or a git ref, printed as
// a plan (text or JSON). Exit codes, like kubectl diff: 0 no changes (or applied), 1 changes a
// dry-run found, 2 an error or a plan apply would refuse (conflict, blocked), 3 a verifier rejection.
import { reconcileOnce } from "../agent/reconcile-once.ts";
import { refusals } from "../core/plan.ts";
import { hasBpfCapability } from "../kernel/capabilities.ts";
import { BpfopsError } from "../core/errors.ts";
import { planJson, renderPlanText } from "./plan-output.ts";
import { defaultCacheDir, parseLabels, sourceOf } from "./source-options.ts";
import { progressLine } from "./progress-line.ts";

export interface ReconcileCliOptions {
  dryRun?: boolean;
  path?: string;
  repo?: string;
  ref?: string;
  verify?: boolean;
  output: "text" | "json";
  bpffs: string;
  labels?: string;
  cache?: string;
  allowEmpty?: boolean;
  mapMemoryBudget?: number;
  showUnchanged?: boolean;
  /** wait for another reconcile of the same root to finish (default), or fail at once */
  wait?: boolean;
}

export const EXIT = { ok: 0, changes: 1, error: 2, rejected: 3 } as const;

export async function runReconcile(opts: ReconcileCliOptions): Promise<number> {
  const source = sourceOf(opts);
  if (opts.verify && !opts.dryRun) throw new BpfopsError("InvalidArgument", "--verify is a dry-run option (apply always verifies, by loading)");
  if ((opts.verify || !opts.dryRun) && !hasBpfCapability()) {
    throw new BpfopsError("PermissionDenied", opts.dryRun ? "--verify loads programs into the kernel verifier and needs CAP_BPF (or CAP_SYS_ADMIN): run as root, or drop --verify for the plan alone" : "reconcile changes the kernel and needs CAP_BPF and CAP_NET_ADMIN: run as root (or use --dry-run)");
  }
  // Crash tests: SIGKILL this process just before step N of the apply, or announce the start of
  // execute on stderr so that a test can kill it at a moment of its choosing.
  const killAt = process.env.BPFOPS_KILL_BEFORE_STEP;
  const announce = process.env.BPFOPS_ANNOUNCE_EXECUTE === "1";
  // Compiling, verifying and applying show a progress line on a terminal, nothing when piped.
  const progress = progressLine();
  const result = await reconcileOnce(source, {
    ...(progress ? { onProgress: progress.report } : {}),
    mode: opts.dryRun ? "dry-run" : "apply",
    root: opts.bpffs,
    labels: parseLabels(opts.labels),
    cacheDir: opts.cache ?? defaultCacheDir(),
    verify: !!opts.verify,
    allowEmpty: !!opts.allowEmpty,
    ...(opts.mapMemoryBudget ? { mapMemoryBudget: opts.mapMemoryBudget } : {}),
    wait: opts.wait ?? true,
    onLockWait: (pid) => process.stderr.write(`bpfops: waiting for the reconcile of ${opts.bpffs} held by pid ${pid}\n`),
    ...(killAt || announce
      ? {
          beforeStep: (n: number) => {
            if (announce && n === 0) process.stderr.write("bpfops: executing\n");
            if (killAt && n === Number(killAt)) process.kill(process.pid, "SIGKILL");
          },
        }
      : {}),
  }).finally(() => progress?.clear());
  const colour = !!process.stdout.isTTY && !process.env.NO_COLOR;
  const applied = result.applied;
  if (opts.output === "json") {
    const json = { ...planJson(result.plan, result.context, result.verify), ...(applied ? { applied: true, timings: { ...result.timings, ...applied.timings }, notes: applied.notes, survivors: applied.survivors } : {}) };
    console.log(JSON.stringify(json, null, 2));
  } else {
    for (const r of result.recovered) console.log(`recovered: ${r}`);
    console.log(renderPlanText(result.plan, result.context, result.verify, { colour, showUnchanged: opts.showUnchanged ?? !!opts.dryRun }));
    if (applied) {
      for (const n of applied.notes) console.log(`note: ${n}`);
      for (const s of applied.survivors) console.log(`not pruned: ${s.pin}: ${s.error} (still owned; the next reconcile tries again)`);
      const t = applied.timings;
      if (result.plan.changes) console.log(`applied in ${(result.timings.observeMs + result.timings.planMs + result.timings.executeMs).toFixed(1)} ms (prepare ${t.prepareMs.toFixed(1)}, commit ${t.commitMs.toFixed(1)}, prune ${t.pruneMs.toFixed(1)}; kernel calls ${t.kernelMs.toFixed(1)})`);
    }
  }
  if (applied) return applied.survivors.length ? EXIT.error : EXIT.ok;
  if (result.verify?.some((v) => v.verdict === "rejected")) return EXIT.rejected;
  if (result.verify?.some((v) => v.verdict === "error")) return EXIT.error;
  if (refusals(result.plan).length) return EXIT.error;
  return result.plan.changes ? EXIT.changes : EXIT.ok;
}
