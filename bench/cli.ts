// bench/cli: whole-process start-up, median of 10 runs each, beside `node -e 0` measured in the
// same run: `bpfops --help`, `bpfops --version` and a cold `reconcile --dry-run` of the example
// manifests (objects cached; exit 2 here: the lab namespaces it names do not exist), for the
// installed package (the bundle dist/bpfops.cjs run by bin/bpfops.cjs) and for the sources through tsx.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const RUNS = 10;
const work = mkdtempSync(join(tmpdir(), "bpfops-bench-cli-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));

function timeOnce(cmd: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: "ignore" });
  if (r.status === null || r.status > 2) throw new Error(`${cmd.join(" ")} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const median = (ms: number[]) => [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;

execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
// The layout of an installed package (bin/, dist/, package.json; the addon and the dependencies
// linked from this checkout), so that bin/bpfops.cjs runs the bundle as it does when installed.
const pkg = join(work, "pkg");
mkdirSync(pkg);
for (const d of ["bin", "dist", "package.json"]) cpSync(d, join(pkg, d), { recursive: true });
for (const d of ["native", "node_modules"]) symlinkSync(resolve(d), join(pkg, d));
const installed = [process.execPath, join(pkg, "bin/bpfops.cjs")];
const root = `/sys/fs/bpf/bpfops-bench-cli-${process.pid}`;
const dry = ["reconcile", "--dry-run", "--path", "manifests/demo", "--bpffs", root, "--cache", join(work, "cache")];
spawnSync(installed[0]!, [...installed.slice(1), ...dry], { stdio: "ignore" }); // fills the compile cache
const rows: Array<[string, string[]]> = [
  ["node -e 0", [process.execPath, "-e", "0"]],
  ["bpfops --help (installed)", [...installed, "--help"]],
  ["bpfops --version (installed)", [...installed, "--version"]],
  ["reconcile --dry-run manifests (installed)", [...installed, ...dry]],
  ["bpfops --help (sources, tsx)", [process.execPath, "bin/bpfops.cjs", "--help"]],
  ["reconcile --dry-run manifests (sources, tsx)", [process.execPath, "bin/bpfops.cjs", ...dry]],
];
// Rounds, each running every command once: load on the machine that comes and goes falls on
// the baseline and the commands alike instead of on whichever ran during it.
const times = rows.map(() => [] as number[]);
for (const [, cmd] of rows) timeOnce(cmd); // warm the page cache
for (let round = 0; round < RUNS; round++) rows.forEach(([, cmd], i) => times[i]!.push(timeOnce(cmd)));
const baseline = median(times[0]!);
console.log(`whole-process medians of ${RUNS} rounds`);
rows.forEach(([name], i) => {
  const m = median(times[i]!);
  console.log(`  ${name.padEnd(46)} ${m.toFixed(1).padStart(8)} ms   ${(m / baseline).toFixed(2)}x${i === 0 ? "  (baseline)" : ""}`);
});
console.log("targets: --help at most 1.5x node -e 0; the dry-run at most 2.5x");
