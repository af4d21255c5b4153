// Shared set-up for kernel tests: privilege and feature gates (skip, or fail under
// BPFOPS_REQUIRE_KERNEL=1), per-test bpffs roots and labs that are always removed, and fd counts.
import { mkdirSync, mkdtempSync, readdirSync, rmdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished, type TestContext } from "vitest";
import { probeFeature, type FeatureName } from "../../reconciler/kernel/features.ts";
import { ensureBpffsDir, removePinTree } from "../../reconciler/kernel/pins.ts";
import { createLab, sweepStaleLabs, type Lab } from "../../reconciler/lab/netlab.ts";

export const requireKernel = process.env.BPFOPS_REQUIRE_KERNEL === "1";
export const isRoot = process.getuid?.() === 0;

/**
 * Skips the test when this kernel (as probed) lacks a feature, or when not root; under
 * BPFOPS_REQUIRE_KERNEL=1 a skip becomes a failure, so CI never passes on skipped kernel tests.
 */
export function needs(ctx: TestContext, ...features: FeatureName[]): void {
  const missing: string[] = [];
  if (!isRoot) missing.push("root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)");
  else {
    for (const f of features) {
      const s = probeFeature(f);
      if (s.status !== "supported") missing.push(`${f} (${s.status}: ${s.detail})`);
    }
  }
  if (missing.length === 0) return;
  if (requireKernel) throw new Error(`BPFOPS_REQUIRE_KERNEL=1 but this kernel test would skip: needs ${missing.join(", ")}`);
  ctx.skip(`needs ${missing.join(", ")}`);
}

let roots = 0;
/** A fresh bpffs directory for this test (/sys/fs/bpf/bpfops-test-<pid>-<n>), removed when it ends. */
export function tempPinRoot(): string {
  const root = `/sys/fs/bpf/bpfops-test-${process.pid}-${roots++}`;
  ensureBpffsDir(root);
  onTestFinished(() => removePinTree(root));
  return root;
}

let swept = false;
/** A lab of two namespaces joined by veth, destroyed when the test ends. */
export function tempLab(): Lab {
  if (!swept) {
    sweepStaleLabs("bpfops-t");
    swept = true;
  }
  const lab = createLab({ prefix: "bpfops-t" });
  onTestFinished(() => lab.destroy());
  return lab;
}

/** A fresh cgroup v2 directory (cgroup2 mounted on a temp dir for the test), removed when it ends. */
export function tempCgroup(): string {
  const mnt = mkdtempSync(join(tmpdir(), "bpfops-cg2-"));
  execFileSync("mount", ["-t", "cgroup2", "none", mnt]);
  const cg = join(mnt, `bpfops-test-${process.pid}`);
  mkdirSync(cg);
  onTestFinished(() => {
    rmdirSync(cg);
    execFileSync("umount", [mnt]);
    rmdirSync(mnt);
  });
  return cg;
}

/** Closes handles when the test ends (in reverse order), whatever happened. */
export function closeAtEnd<T extends { close(): void }>(h: T): T {
  onTestFinished(() => h.close());
  return h;
}

export function openFdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

export const BPF = (name: string) => new URL(`../../bpf/${name}`, import.meta.url).pathname;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/**
 * A child process that waits for a line on stdin, then makes `calls` getppid(2) calls and exits:
 * a syscall source whose pid is known before programs filtering on it are loaded.
 */
export async function getppidCaller(calls: number): Promise<{ pid: number; run(): Promise<void> }> {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, ["-e", `process.stdin.once("data", () => { for (let i = 0; i < ${calls}; i++) process.ppid; process.exit(0); })`], {
    stdio: ["pipe", "ignore", "inherit"],
  });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  return {
    pid: child.pid!,
    run: () =>
      new Promise<void>((resolve, reject) => {
        child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`getppid caller exited ${code}`))));
        child.stdin!.write("go\n");
      }),
  };
}

/** Polls f until it gives a truthy value, which it returns; after ms, throws naming what (and what explain() says). */
export async function until<T>(what: string, f: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 15_000, explain?: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${explain ? `\n${explain()}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
