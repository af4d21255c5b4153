// bench/cli: whole-process start-up, median of 10 runs each, beside `node -e 0` measured in the
// same run: `bpfops --help`, `bpfops --version` and a cold `reconcile --dry-run` of the example
// manifests (objects cached; exit 2 here: the lab namespaces it names do not exist), for the compiled package (dist/) and for the sources through tsx.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const RUNS = 10;
const work = mkdtempSync(join(tmpdir(), "bpfops-bench-cli-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));

function median(cmd: string[]): number {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: "ignore" });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status === null || r.status > 2) throw new Error(`${cmd.join(" ")} exited ${r.status}`);
  }
  return ms.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
}

execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
const root = `/sys/fs/bpf/bpfops-bench-cli-${process.pid}`;
const dry = ["reconcile", "--dry-run", "--path", "manifests", "--bpffs", root, "--cache", join(work, "cache")];
spawnSync(process.execPath, ["dist/reconciler/cli/main.js", ...dry], { stdio: "ignore" }); // fills the compile cache
const baseline = median([process.execPath, "-e", "0"]);
const rows: Array<[string, string[]]> = [
  ["bpfops --help (compiled)", [process.execPath, "dist/reconciler/cli/main.js", "--help"]],
  ["bpfops --version (compiled)", [process.execPath, "dist/reconciler/cli/main.js", "--version"]],
  ["reconcile --dry-run manifests (compiled)", [process.execPath, "dist/reconciler/cli/main.js", ...dry]],
  ["bpfops --help (sources, tsx)", [process.execPath, "bin/bpfops.js", "--help"]],
  ["reconcile --dry-run manifests (sources, tsx)", [process.execPath, "bin/bpfops.js", ...dry]],
];
console.log(`whole-process medians of ${RUNS} runs`);
console.log(`  ${"node -e 0".padEnd(46)} ${baseline.toFixed(1).padStart(8)} ms   1.00x  (baseline)`);
for (const [name, cmd] of rows) {
  const m = median(cmd);
  console.log(`  ${name.padEnd(46)} ${m.toFixed(1).padStart(8)} ms   ${(m / baseline).toFixed(2)}x`);
}
console.log("targets: --help at most 1.5x node -e 0; the dry-run at most 2.5x");
