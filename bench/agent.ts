// bench/agent: the agent as a process following a local git repository, measured in one run:
// commit-to-enforced latency (p50, p99 over 20 commits) with 1 s polling and with the webhook;
// idle CPU over 60 s and RSS with 100 and 1,000 owned objects; drift detection-to-healed time.
// "Enforced" is the moment the agent reports the commit applied (its reconcile returned, the
// change in the kernel). Prints figures; asserts nothing.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openPinnedMap, removePinTree } from "../reconciler/kernel/pins.ts";

const work = mkdtempSync(join(tmpdir(), "bpfops-bench-agent-"));
const roots: string[] = [];
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
  for (const r of roots) removePinTree(r);
  rmSync(work, { recursive: true, force: true });
});
const HDR = "apiVersion: bpfops.dev/v1alpha1\n";
const SECRET = "bench-webhook-secret-0123456789";
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/** A repository whose one Map (exact entries) changes value with each commit, plus n other Maps. */
function repo(name: string, n: number) {
  const dir = join(work, name);
  execFileSync("git", ["init", "-q", "-b", "main", dir]);
  const git = (...a: string[]) => execFileSync("git", ["-c", "user.name=b", "-c", "user.email=b@b", ...a], { cwd: dir, encoding: "utf8" }).trim();
  // The other Maps, 250 documents a file (a file holds at most 500).
  for (let f = 0; f * 250 < n; f++) {
    const docs = Array.from({ length: Math.min(250, n - f * 250) }, (_, i) => `${HDR}kind: Map\nmetadata: { name: m${f * 250 + i} }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 1 }\n`);
    writeFileSync(join(dir, `others-${f}.yaml`), docs.join("---\n"));
  }
  const write = (v: number) => {
    writeFileSync(join(dir, "m.yaml"), `${HDR}kind: Map\nmetadata: { name: rule }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 4, entryPolicy: exact, datapathWrites: none, entries: [{ key: 1, value: ${v} }] }\n`);
    git("add", "-A");
    git("commit", "-q", "-m", `v${v}`);
    return git("rev-parse", "HEAD");
  };
  return { dir, write };
}

async function agent(dir: string, root: string, args: string[]): Promise<{ url: string; pid: number }> {
  for (const c of children.splice(0)) c.kill("SIGKILL"); // one agent at a time
  writeFileSync(join(work, "secret"), SECRET);
  const child = spawn(process.execPath, ["--import", "tsx", "reconciler/cli/main.ts", "agent", "--repo", dir, "--bpffs", root, "--cache", join(work, "cache"), "--listen", "127.0.0.1:0", "--webhook-secret-file", join(work, "secret"), ...args], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  for (;;) {
    const m = /"listen":"([\d.]+:\d+)"/.exec(out);
    if (m) return { url: `http://${m[1]}`, pid: child.pid! };
    await new Promise((r) => setTimeout(r, 20));
  }
}

const applied = async (url: string) => ((await (await fetch(`${url}/status`)).json()) as { lastAppliedRevision?: string }).lastAppliedRevision;
async function waitApplied(url: string, rev: string): Promise<void> {
  const end = Date.now() + 120_000;
  while ((await applied(url)) !== rev) {
    if (Date.now() > end) throw new Error(`bench: ${rev} not applied: ${await (await fetch(`${url}/status`)).text()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function latency(mode: "poll" | "webhook"): Promise<number[]> {
  const r = repo(`latency-${mode}`, 0);
  const root = `/sys/fs/bpf/bpfops-bench-agent-${process.pid}-${mode}`;
  roots.push(root);
  let rev = r.write(0);
  const a = await agent(r.dir, root, ["--interval", mode === "poll" ? "1s" : "1h"]);
  await waitApplied(a.url, rev);
  const ms: number[] = [];
  for (let i = 1; i <= 20; i++) {
    rev = r.write(i);
    const t0 = performance.now();
    if (mode === "webhook") {
      const body = JSON.stringify({ after: rev });
      await fetch(`${a.url}/webhook`, { method: "POST", body, headers: { "x-hub-signature-256": `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`, "x-github-delivery": `bench-${i}` } });
    }
    await waitApplied(a.url, rev);
    ms.push(performance.now() - t0);
    // a moment between commits, off the poll's phase
    await new Promise((res) => setTimeout(res, 137));
  }
  return ms;
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime, after the comm field
}
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

async function idle(n: number): Promise<{ cpu: number; rss: number }> {
  const r = repo(`idle-${n}`, n);
  const root = `/sys/fs/bpf/bpfops-bench-agent-${process.pid}-idle-${n}`;
  roots.push(root);
  const rev = r.write(0);
  const a = await agent(r.dir, root, ["--interval", "30s", "--drift-interval", "30s"]);
  await waitApplied(a.url, rev);
  const hz = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));
  const t0 = cpuTicks(a.pid);
  await new Promise((res) => setTimeout(res, 60_000));
  return { cpu: ((cpuTicks(a.pid) - t0) / hz / 60) * 100, rss: rssMiB(a.pid) };
}

async function drift(): Promise<number[]> {
  const r = repo("drift", 0);
  const root = `/sys/fs/bpf/bpfops-bench-agent-${process.pid}-drift`;
  roots.push(root);
  const rev = r.write(7);
  const a = await agent(r.dir, root, ["--interval", "1h", "--drift-interval", "1s"]);
  await waitApplied(a.url, rev);
  const m = openPinnedMap(`${root}/maps/rule`);
  const ms: number[] = [];
  for (let i = 0; i < 5; i++) {
    m.delete(Buffer.from([1, 0, 0, 0]));
    const t0 = performance.now();
    while (!m.lookup(Buffer.from([1, 0, 0, 0]))) await new Promise((res) => setTimeout(res, 2));
    ms.push(performance.now() - t0);
    await new Promise((res) => setTimeout(res, 300));
  }
  m.close();
  return ms;
}

const poll = await latency("poll");
const hook = await latency("webhook");
const healed = await drift();
const small = await idle(100);
const large = await idle(1000);
console.log("bpfops agent (one process per measurement, a local git repository)");
console.log(`  commit to enforced, 1 s polling:  p50 ${pct(poll, 50).toFixed(0)} ms, p99 ${pct(poll, 99).toFixed(0)} ms (20 commits)`);
console.log(`  commit to enforced, webhook:      p50 ${pct(hook, 50).toFixed(0)} ms, p99 ${pct(hook, 99).toFixed(0)} ms (20 commits; target under 300 ms)`);
console.log(`  drift (entry deleted) to healed:  p50 ${pct(healed, 50).toFixed(0)} ms, max ${Math.max(...healed).toFixed(0)} ms (drift interval 1 s, 5 times)`);
console.log(`  idle, 100 objects:   CPU ${small.cpu.toFixed(2)}% of a core over 60 s, RSS ${small.rss.toFixed(0)} MiB`);
console.log(`  idle, 1,000 objects: CPU ${large.cpu.toFixed(2)}% of a core over 60 s, RSS ${large.rss.toFixed(0)} MiB (targets: under 1%, under 150 MB)`);
process.exit(0);
