// The fleet's repository for tests, benchmarks and the demo: the packet-of-death filter (its .bpf.c
// source, which the controller compiles once), its rules, a declared drop metric for health
// gates, and a Rollout manifest; commit() writes a state of it and commits it.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const HDR = "apiVersion: bpfops.dev/v1alpha1\n";

/** A pod rule (struct pod_rule): enabled, drop, UDP, to this port. */
const dropUdp = (port: number) => {
  const b = Buffer.alloc(32);
  b.writeUInt8(1, 0);
  b.writeUInt8(0, 1);
  b.writeUInt8(17, 2);
  b.writeUInt16LE(port, 8);
  return `hex:${b.toString("hex")}`;
};

export interface RepoState {
  rules: number[];
  version?: number;
  gate?: boolean;
  /** a kprobe Attachment for hosts labelled probe=kprobe: this kernel cannot attach kprobes */
  kprobeHost?: boolean;
  bake?: string;
  /**
   * Another build of the filter's source: its default filter_version (which the manifest's global
   * overrides at load) set to this, so the controller compiles a new object and hosts load it.
   */
  source?: number;
}

/** Repositories not removed yet: removed at exit, also when the process dies of an exception. */
const live = new Set<string>();
process.on("exit", () => {
  for (const d of live) rmSync(d, { recursive: true, force: true });
});

export function fleetRepo() {
  const dir = mkdtempSync(join(tmpdir(), "bpfops-fleet-repo-"));
  live.add(dir);
  mkdirSync(join(dir, "bpf"));
  for (const f of ["pod_filter.bpf.c", "pod_filter.h", "common.bpf.h", "tp_counter.bpf.c"]) copyFileSync(new URL(`../../bpf/${f}`, import.meta.url).pathname, join(dir, "bpf", f));
  mkdirSync(join(dir, "fleet"));
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: dir, encoding: "utf8" }).trim();
  git("init", "-q", "-b", "main");
  const filterSource = readFileSync(join(dir, "bpf", "pod_filter.bpf.c"), "utf8");
  const commit = (s: RepoState, message: string) => {
    writeFileSync(join(dir, "bpf", "pod_filter.bpf.c"), s.source === undefined ? filterSource : filterSource.replace(/filter_version = \d+;/, `filter_version = ${s.source};`));
    const entries = s.rules.map((p, i) => `    - { key: ${i}, value: "${dropUdp(p)}" }`).join("\n");
    writeFileSync(
      join(dir, "fleet", "filter.yaml"),
      `${HDR}kind: Map\nmetadata: { name: pod-rules }\nspec:\n  type: array\n  keySize: 4\n  valueSize: 32\n  maxEntries: 64\n  entryPolicy: exact\n  datapathWrites: none\n  entries:\n${entries}\n---
${HDR}kind: Map\nmetadata: { name: pod-stats }\nspec:\n  type: percpu_array\n  keySize: 4\n  valueSize: 16\n  maxEntries: 65\n  metrics:\n    - { name: pod_dropped_total, value: dropped, labels: { rule: "" } }\n    - { name: pod_passed_total, value: passed, labels: { rule: "" } }\n---
${HDR}kind: Program\nmetadata: { name: pod-filter }\nspec:\n  object: ../bpf/pod_filter.bpf.c\n  program: pod_filter\n  globals: { filter_version: ${s.version ?? 1} }\n  maps: { pod_rules: { bind: pod-rules }, pod_stats: { bind: pod-stats } }\n---
${HDR}kind: Attachment\nmetadata: { name: pod-filter }\nspec: { program: pod-filter, hook: { type: xdp, interfaces: [dst0] } }\n` +
        (s.kprobeHost
          ? `---\n${HDR}kind: Program\nmetadata: { name: probe }\nspec: { object: ../bpf/tp_counter.bpf.c, program: count_getppid, type: kprobe }\n---\n${HDR}kind: Attachment\nmetadata: { name: probe }\nspec: { program: probe, hook: { type: kprobe, function: do_nanosleep }, hostSelector: { matchLabels: { probe: kprobe } } }\n`
          : ""),
    );
    writeFileSync(
      join(dir, "fleet", "rollout.yaml"),
      `${HDR}kind: Rollout\nmetadata: { name: fleet }\nspec:\n  rings:\n    - { name: canary, hosts: 1 }\n    - { name: half, percent: 50 }\n    - { name: all, percent: 100 }\n  bake: ${s.bake ?? "1s"}\n  readyTimeout: 30s\n` +
        (s.gate ? `  gates:\n    - { name: legit-traffic-kept, metric: pod_dropped_total, max: 0 }\n` : ""),
    );
    git("add", "-A");
    git("commit", "-q", "-m", message);
    return git("rev-parse", "HEAD");
  };
  const remove = () => {
    rmSync(dir, { recursive: true, force: true });
    live.delete(dir);
  };
  return { dir, commit, remove };
}

