// bench/plan: `bpfops reconcile --dry-run` as a cold CLI process on the example repository, and
// build / observe / plan time for generated repositories of 10, 100 and 1,000 programs (each
// with a map and an attachment), so that growth is visible. Prints figures; asserts nothing.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { directoryTree } from "../reconciler/sources/repo-tree.ts";
import { buildRevision } from "../reconciler/agent/build.ts";
import { observeState } from "../reconciler/host/observe-state.ts";
import { plan } from "../reconciler/core/plan.ts";
import { bpfObject } from "../reconciler/lab/drills.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const work = mkdtempSync(join(tmpdir(), "bpfops-bench-plan-"));
const root = `/sys/fs/bpf/bpfops-bench-plan-${process.pid}`; // never created: a dry run pins nothing

function coldCli(): void {
  const cache = join(work, "cache");
  const run = () => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ["bin/bpfops.cjs", "reconcile", "--dry-run", "--path", "manifests/demo", "--bpffs", root, "--cache", cache], { encoding: "utf8" });
    if (r.status !== 1) throw new Error(`dry-run exited ${r.status}: ${r.stderr}`);
    return ms(t0);
  };
  const first = run(); // compiles the example's .bpf.c sources into the empty cache
  const warm = Array.from({ length: 7 }, run);
  const bare = Array.from({ length: 7 }, () => {
    const t0 = process.hrtime.bigint();
    spawnSync(process.execPath, ["bin/bpfops.cjs", "--version"]);
    return ms(t0);
  });
  console.log("dry-run of manifests/ as a cold CLI process (wall time)");
  console.log(`  first run, empty compile cache   ${first.toFixed(0)} ms`);
  console.log(`  cached objects, median of 7      ${median(warm).toFixed(0)} ms`);
  console.log(`  baseline: \`bpfops --version\`    ${median(bare).toFixed(0)} ms (Node + TypeScript loader start-up)`);
}

function generate(n: number): string {
  const dir = join(work, `repo-${n}`);
  mkdirSync(join(dir, "objs"), { recursive: true });
  copyFileSync(bpfObject("pod_filter.o"), join(dir, "objs/pod_filter.o"));
  const docs: string[] = [];
  const H = "apiVersion: bpfops.dev/v1alpha1";
  for (let i = 0; i < n; i++) {
    docs.push(`${H}\nkind: Map\nmetadata: { name: rules-${i} }\nspec: { type: array, keySize: 4, valueSize: 32, maxEntries: 64, entries: [{ key: 0, value: "hex:${"00".repeat(32)}" }] }`);
    docs.push(`${H}\nkind: Program\nmetadata: { name: filter-${i} }\nspec: { object: objs/pod_filter.o, program: pod_filter, globals: { filter_version: ${i} }, maps: { pod_rules: { bind: rules-${i} } } }`);
    docs.push(`${H}\nkind: Attachment\nmetadata: { name: filter-${i} }\nspec: { program: filter-${i}, hook: { type: xdp, netns: bpfops-bench-absent, interfaces: [eth${i % 4096}] } }`);
  }
  // Files of 100 programs each, as a repository would split them.
  for (let f = 0; f * 300 < docs.length; f++) writeFileSync(join(dir, `m-${f}.yaml`), docs.slice(f * 300, f * 300 + 300).join("\n---\n") + "\n");
  return dir;
}

async function scaling(): Promise<void> {
  console.log("\nin-process, median of 5 (generated repositories; N programs + N maps + N attachments)");
  console.log(`  ${"N".padStart(5)}  ${"build".padStart(9)}  ${"observe".padStart(9)}  ${"plan".padStart(9)}  ${"total/N".padStart(9)}`);
  let baseline = 0;
  for (const n of [10, 100, 1000]) {
    const dir = generate(n);
    const t = { build: [] as number[], observe: [] as number[], plan: [] as number[] };
    for (let r = 0; r < 5; r++) {
      let t0 = process.hrtime.bigint();
      const b = await buildRevision(directoryTree(dir), { manifestDir: ".", labels: {}, cacheDir: join(work, "cache") });
      t.build.push(ms(t0));
      t0 = process.hrtime.bigint();
      const o = observeState(root, b.desired);
      t.observe.push(ms(t0));
      t0 = process.hrtime.bigint();
      const p = plan(b.desired, o);
      t.plan.push(ms(t0));
      if (p.actions.length < 3 * n) throw new Error(`a plan of ${p.actions.length} actions for ${n} programs`);
    }
    const total = median(t.build) + median(t.observe) + median(t.plan);
    const perN = total / n;
    if (n === 10) baseline = perN;
    console.log(
      `  ${String(n).padStart(5)}  ${median(t.build).toFixed(1).padStart(7)} ms  ${median(t.observe).toFixed(1).padStart(7)} ms  ${median(t.plan).toFixed(1).padStart(7)} ms  ${(perN * 1000).toFixed(0).padStart(6)} µs` +
        (n > 10 ? `  (${(perN / baseline).toFixed(2)}x the per-program cost at N=10)` : ""),
    );
  }
  console.log("  Per-program cost that stays flat (or falls) as N grows means linear growth or better.");
}

process.on("exit", () => rmSync(work, { recursive: true, force: true }));
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

coldCli();
await scaling();
