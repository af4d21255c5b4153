// bench/reconcile: time from start to enforced for 1, 10 and 100 changed programs, split into
// bpfops's own work and the kernel's (load + verify, swap calls), and no-op reconcile time for
// 10, 100 and 1,000 owned objects. Each program is a tcx counter on its own veth interface in a
// private namespace (this kernel has no dummy driver). Prints figures; asserts nothing.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reconcileOnce } from "../reconciler/agent/reconcile-once.ts";
import { removePinTree } from "../reconciler/kernel/pins.ts";
import { bpfObject } from "../reconciler/lab/drills.ts";

const NS = `bpfops-bench-${process.pid}`;
const work = mkdtempSync(join(tmpdir(), "bpfops-bench-rec-"));
const roots: string[] = [];
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function interfaces(n: number): void {
  const batch = Array.from({ length: n }, (_, i) => `link add dum${i} type veth peer name peer${i}\nlink set dum${i} up`).join("\n");
  execFileSync("ip", ["-n", NS, "-batch", "-"], { input: batch + "\n" });
}

function repo(n: number, version: number): string {
  const dir = join(work, `repo-${n}`);
  mkdirSync(join(dir, "objs"), { recursive: true });
  copyFileSync(bpfObject("tcx_counter.o"), join(dir, "objs/tcx_counter.o"));
  const H = "apiVersion: bpfops.dev/v1alpha1";
  const docs = Array.from({ length: n }, (_, i) =>
    [
      `${H}\nkind: Program\nmetadata: { name: counter-${i} }\nspec: { object: objs/tcx_counter.o, program: tcx_counter, globals: { counter_version: ${version} } }`,
      `${H}\nkind: Attachment\nmetadata: { name: counter-${i} }\nspec: { program: counter-${i}, hook: { type: tcx, netns: ${NS}, interfaces: [dum${i}], direction: ingress } }`,
    ].join("\n---\n"),
  );
  for (let f = 0; f * 100 < docs.length; f++) writeFileSync(join(dir, `m-${f}.yaml`), docs.slice(f * 100, f * 100 + 100).join("\n---\n") + "\n");
  return dir;
}

async function reconcile(dir: string, root: string) {
  const t0 = process.hrtime.bigint();
  const r = await reconcileOnce({ kind: "directory", path: dir }, { mode: "apply", root, labels: {}, cacheDir: join(work, "cache"), allowEmpty: true });
  return { totalMs: ms(t0), r };
}

async function main(): Promise<void> {
  execFileSync("ip", ["netns", "add", NS]);
  interfaces(500);
  console.log("changed programs: start (build) to enforced (last swap returned), median of 7 reconciles, each changing every program");
  console.log("(after 3 warm-up reconciles: the agent is a long-running process, so its steady state is what counts)");
  console.log(`  ${"N".padStart(4)}  ${"total".padStart(10)}  ${"kernel".padStart(10)}  ${"bpfops".padStart(10)}  bpfops share`);
  for (const n of [1, 10, 100]) {
    const root = `/sys/fs/bpf/bpfops-bench-rec-${process.pid}-${n}`;
    roots.push(root);
    for (let i = 0; i < 3; i++) await reconcile(repo(n, 1 + (i % 2)), root);
    const runs: Array<Awaited<ReturnType<typeof reconcile>>> = [];
    for (let i = 0; i < 7; i++) runs.push(await reconcile(repo(n, 3 + (i % 2)), root));
    runs.sort((a, b) => a.totalMs - b.totalMs);
    const { totalMs, r } = runs[3]!;
    const kernel = r.applied!.timings.kernelMs;
    console.log(`  ${String(n).padStart(4)}  ${totalMs.toFixed(1).padStart(7)} ms  ${kernel.toFixed(1).padStart(7)} ms  ${(totalMs - kernel).toFixed(1).padStart(7)} ms  ${((100 * (totalMs - kernel)) / totalMs).toFixed(0)}%  (${r.plan.summary.load} loads, ${r.plan.summary.swap} swaps)`);
  }
  console.log("  kernel = program load + verification and the link-update calls; bpfops = everything else");
  console.log("  (parsing, digests, observation of pins and hooks, planning, pinning, provenance).");

  console.log("\nno-op reconcile (nothing to change), median of 5");
  let base = 0;
  for (const programs of [5, 50, 500]) {
    const root = `/sys/fs/bpf/bpfops-bench-noop-${process.pid}-${programs}`;
    roots.push(root);
    const dir = repo(programs, 1);
    await reconcile(dir, root);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push((await reconcile(dir, root)).totalMs);
    const objects = programs * 2; // a program version and its link each
    const per = median(times) / objects;
    if (!base) base = per;
    console.log(`  ${String(objects).padStart(5)} owned objects  ${median(times).toFixed(1).padStart(8)} ms  ${(per * 1000).toFixed(0).padStart(5)} µs/object${objects > 10 ? `  (${(per / base).toFixed(2)}x the per-object time at 10)` : ""}`);
  }
}

// Cleans up on every way out, also a crash or a closed pipe (`| head`), where finally never runs.
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const r of roots) removePinTree(r);
  try {
    execFileSync("ip", ["netns", "del", NS], { stdio: "ignore" });
  } catch {
    // never created
  }
  rmSync(work, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

await main();
