// bench/fleet: commit-to-enforced on every host of a simulated fleet (real agents, each in its own
// network and mount namespace, one etcd, one controller, a real git server over smart HTTP), for
// N = 10, 25 and 50 hosts, in one run and side by side:
//   - the emergency path for a rule change (map entries) and for a program change: a new version
//     of the filter (a new value of its global: a program load and verify on every host), and a
//     new build of its source (the controller compiles it once; hosts load the new object),
//   - plain git polling at 1 s (every agent following the repository itself),
// with the requests the git server served per rollout in each mode. "Enforced" on a host is the
// time its agent logged the revision applied (its reconcile returned, the change in the kernel);
// the clock starts just before the commit. The emergency figures are taken after one rule and
// one program were rolled out unmeasured (warm-up: a fleet that has applied revisions before).
// BPFOPS_BENCH_TRACE=1 prints each step's time and each process's CPU. Prints figures; asserts nothing.
// BPFOPS_BENCH_FLEET_SIZES=5,10 runs other sizes.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { createFleetLab, type FleetLab } from "../reconciler/lab/fleet-lab.ts";
import { fleetRepo, type RepoState } from "../reconciler/lab/fleet-repo.ts";

const sizes = (process.env.BPFOPS_BENCH_FLEET_SIZES ?? "10,25,50").split(",").map(Number);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const GIT_SERVER = new URL("../reconciler/lab/git-server.ts", import.meta.url).pathname;

async function until(what: string, f: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A git server in the fleet's traffic namespace, counting what it serves. */
async function gitServer(lab: FleetLab, root: string): Promise<{ port: number; served: { refs: number; fetches: number }; child: ChildProcess }> {
  const child = spawn("nsenter", [`--net=/var/run/netns/${lab.traffic}`, "--", process.execPath, "--import", "tsx", GIT_SERVER, root, "0.0.0.0"], { stdio: ["ignore", "pipe", "inherit"] });
  const served = { refs: 0, fetches: 0 };
  let port = 0;
  createInterface({ input: child.stdout! }).on("line", (l) => {
    const m = JSON.parse(l) as { url?: string; kind?: string; path?: string };
    if (m.url) port = Number(new URL(m.url).port);
    if (process.env.BPFOPS_BENCH_TRACE && m.kind) console.error(`  ${Date.now() % 100000} git server: ${m.kind} ${m.path}`);
    if (m.kind === "refs") served.refs++;
    if (m.kind === "fetch") served.fetches++;
  });
  await until("the git server", () => port > 0, 10_000);
  return { port, served, child };
}

/** When each host's agent logged each revision applied (ms since the epoch), read as its lines arrive. */
const applied = new Map<string, Map<string, number>>();
function follow(host: string, agent: ChildProcess): ChildProcess {
  const seen = applied.get(host) ?? new Map<string, number>();
  applied.set(host, seen);
  createInterface({ input: agent.stdout! }).on("line", (l) => {
    if (!l.includes('"revision applied"')) return;
    const j = JSON.parse(l) as { time: number; revision: string };
    if (!seen.has(j.revision)) seen.set(j.revision, j.time);
  });
  return agent;
}
/** The times every host applied revision (a digest or a commit), once all have. */
async function appliedAt(lab: FleetLab, revision: string, ms = 120_000): Promise<number[]> {
  const at = () => lab.hosts.map((h) => applied.get(h.name)?.get(revision));
  await until(`${revision.slice(0, 19)} applied on every host`, () => at().every((t) => t !== undefined), ms);
  return at() as number[];
}

/** CPU time (ms) a process has used, and the machine's busy CPU time (ms), for the trace. */
const cpuOf = (pid: number | undefined) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
};
/** CPU time (ms) of every live process by its command line's first words, for the trace. */
const processCpu = () => {
  const out = new Map<string, number>();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).map((a) => basename(a)).slice(0, 3).join(" ");
      out.set(`${pid} ${cmd}`, cpuOf(Number(pid)));
    } catch {
      // gone
    }
  }
  return out;
};
const machineBusy = () => {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!) * 10;
};

interface Row {
  n: number;
  mode: string;
  p50: number;
  p99: number;
  max: number;
  refs: number;
  fetches: number;
}
const rows: Row[] = [];

// The built bundle, run as an installed package runs it: through bin/code-cache.cjs, with V8's
// code cache of each command taken when it first exits (the sources through tsx start 2-3x slower,
// and `bpfops rollout start` is on the measured path).
execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
const binDir = mkdtempSync(join(tmpdir(), "bpfops-bench-fleet-bin-"));
const bin = join(binDir, "bpfops.cjs");
writeFileSync(bin, `require(${JSON.stringify(new URL("../bin/code-cache.cjs", import.meta.url).pathname)}).run(${JSON.stringify(new URL("../dist/bpfops.cjs", import.meta.url).pathname)});\n`);
process.on("exit", () => rmSync(binDir, { recursive: true, force: true }));

for (const n of sizes) {
  const lab = await createFleetLab(n, { fleet: "bench", bin });
  // (each size's repository makes the same digests as the last one's)
  applied.clear();
  const repo = fleetRepo();
  const cache = mkdtempSync(join(tmpdir(), "bpfops-bench-fleet-"));
  const removeCache = () => rmSync(cache, { recursive: true, force: true });
  process.once("exit", removeCache);
  let server: Awaited<ReturnType<typeof gitServer>> | undefined;
  try {
    server = await gitServer(lab, dirname(repo.dir));
    const repoPath = `/${basename(repo.dir)}/.git`;
    let rules = [6666];
    repo.commit({ rules }, "the filter");
    const controller = lab.startController(["--repo", `http://127.0.0.1:${server.port}${repoPath}`, "--ref", "main", "--path", "fleet", "--allow-unsigned", "--cache", cache]);
    const agents = lab.hosts.map((h) => follow(h.name, h.startAgent(["--interval", "1h", "--drift-interval", "1h"])));
    const members = () => (JSON.parse(lab.cli(["fleet", "status", "--output", "json"]).stdout || "{}") as { hosts?: Array<{ member: boolean }> }).hosts?.filter((h) => h.member).length ?? 0;
    await until(`${n} agents registered`, () => members() === n, 120_000);
    // (not lab.cli: a blocked event loop would count the git server's requests late, in the next rollout)
    const first = await lab.cliAsync(["rollout", "start", "--emergency", "--wait", "--output", "json"]);
    if (first.status !== 0) throw new Error(`first rollout: ${first.stdout}${first.stderr}`);

    /** Commit, then an emergency rollout of it: per-host commit-to-enforced, and the git server's share. */
    const emergency = async (mode: string, change: () => void) => {
      const before = { ...server!.served };
      const cpu0 = { agents: agents.reduce((a, c) => a + cpuOf(c.pid), 0), controller: cpuOf(controller.pid), machine: machineBusy(), procs: processCpu() };
      const t0 = Date.now();
      change();
      if (process.env.BPFOPS_BENCH_TRACE) console.error(`  +${Date.now() - t0} ms committed`);
      const r = await lab.cliAsync(["rollout", "start", "--emergency", "--wait", "--output", "json"]);
      const digest = (JSON.parse(r.stdout) as { digest: string }).digest;
      const lat = (await appliedAt(lab, digest)).map((t) => t - t0);
      if (process.env.BPFOPS_BENCH_TRACE) {
        type Line = { time: number; msg: string; ring?: string; requestedAt?: string; fetchMs?: number; buildMs?: number; publishMs?: number };
        for (const j of controller.logs().split("\n").filter((x) => x.startsWith("{")).map((l) => JSON.parse(l) as Line)) {
          if (j.time < t0) continue;
          if (j.requestedAt) console.error(`  +${Date.parse(j.requestedAt) - t0} ms requested (the CLI's put)`);
          console.error(`  +${j.time - t0} ms controller: ${j.msg} ${j.ring ?? ""} ${JSON.stringify({ f: j.fetchMs, b: j.buildMs, p: j.publishMs })}`);
        }
        for (const h of lab.hosts) {
          for (const l of h.logs().split("\n").filter((x) => x.includes(digest) && x.includes("revision applied"))) {
            const j = JSON.parse(l) as { time: number; ms: number; timings: unknown };
            console.error(`  +${j.time - t0} ms ${h.name} applied (${j.ms.toFixed(0)} ms reconcile ${JSON.stringify(j.timings)})`);
          }
        }
        const by = new Map<string, number>();
        for (const [k, v] of processCpu()) {
          const what = k.split(" ").slice(1).join(" ").replace(/h\d+$/, "");
          if (v - (cpu0.procs.get(k) ?? 0) > 0) by.set(what, (by.get(what) ?? 0) + v - (cpu0.procs.get(k) ?? 0));
        }
        console.error(`  CPU by process: ${[...by].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join("; ")}`);
        console.error(`  CPU: agents ${agents.reduce((a, c) => a + cpuOf(c.pid), 0) - cpu0.agents} ms, controller ${cpuOf(controller.pid) - cpu0.controller} ms, machine ${machineBusy() - cpu0.machine} ms busy`);
      }
      rows.push({ n, mode, p50: pct(lat, 50), p99: pct(lat, 99), max: Math.max(...lat), refs: server!.served.refs - before.refs, fetches: server!.served.fetches - before.fetches });
    };
    // Warm-up, not measured: a rule and a program rolled out once. Agents and controller run for
    // months; what is measured is a fleet that has applied revisions before, not the first time
    // each process runs this code (V8 interprets a function's first calls).
    const warmUp: Array<[RepoState, string]> = [[{ rules: [...rules, 6000] }, "warm-up: a rule"], [{ rules, version: 3 }, "warm-up: a program"]];
    for (const [state, why] of warmUp) {
      repo.commit(state, why);
      const w = await lab.cliAsync(["rollout", "start", "--emergency", "--wait", "--output", "json"]);
      if (w.status !== 0) throw new Error(`${why}: ${w.stdout}${w.stderr}`);
    }
    await emergency("emergency rule (map update)", () => repo.commit({ rules: (rules = [...rules, 7000 + rules.length]), version: 3 }, "a rule"));
    await emergency("emergency program", () => repo.commit({ rules, version: 2 }, "a program"));
    await emergency("emergency program, new source", () => repo.commit({ rules, version: 2, source: 2 }, "a program from a new source"));

    // Plain git polling: every agent follows the repository itself, every second.
    for (const h of lab.hosts) await h.stopAgent("SIGTERM");
    for (const h of lab.hosts) follow(h.name, h.startAgent(["--repo", `http://${h.gateway}:${server.port}${repoPath}`, "--ref", "main", "--path", "fleet", "--interval", "1s", "--drift-interval", "1h", "--allow-unsigned"], { git: true }));
    const head = repo.commit({ rules: (rules = [...rules, 7000 + rules.length]), version: 2 }, "git: the first rule");
    await appliedAt(lab, head, 300_000);
    await sleep(1500);
    const before = { ...server.served };
    const t0 = Date.now();
    const next = repo.commit({ rules: (rules = [...rules, 7000 + rules.length]), version: 2 }, "git: a rule");
    const lat = (await appliedAt(lab, next)).map((t) => t - t0);
    rows.push({ n, mode: "git polling, 1 s", p50: pct(lat, 50), p99: pct(lat, 99), max: Math.max(...lat), refs: server.served.refs - before.refs, fetches: server.served.fetches - before.fetches });
    console.error(`bench/fleet: ${n} hosts done`);
  } finally {
    server?.child.kill("SIGKILL");
    await lab.destroy();
    repo.remove();
    removeCache();
    process.off("exit", removeCache);
  }
}

console.log("commit to enforced on every host (ms), and what the git server served for the change");
console.log(`${"hosts".padEnd(6)}${"mode".padEnd(30)}${"p50".padStart(7)}${"p99".padStart(7)}${"max".padStart(7)}   git ref listings / fetches`);
for (const r of rows) console.log(`${String(r.n).padEnd(6)}${r.mode.padEnd(30)}${String(r.p50).padStart(7)}${String(r.p99).padStart(7)}${String(r.max).padStart(7)}   ${r.refs} / ${r.fetches}`);
console.log("targets: an emergency rule on 50 hosts p99 < 1000 ms, an emergency program < 2000 ms; one git fetch per rollout");
