// Compiles a .bpf.c source from the repository with clang, cached by content digest: the source,
// every header beside it and in its include directories, the flags, defines and clang's version,
// and vmlinux.h: the repository's when it ships one (then nothing of this host but clang and its
// architecture is in the key, and every host of the architecture builds the same bytes), else one
// generated from the running kernel's BTF (whose digest is then in the key).
// clang runs hermetically: inside bubblewrap it sees the toolchain and system headers (/usr, read
// only) and the build directory holding the repository's inputs, nothing else of the host (no
// /etc, /home, /tmp, /proc of the host, no network), under a time limit; the event loop never waits on it.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import type { RepoTree } from "./repo-tree.ts";
import { notedDigest } from "./cache-note.ts";
import { bpfTarget } from "./bpf-target.ts";

const BASE_FLAGS = ["-O2", "-g", "-Wall", "-target", "bpf"];

/** A Program's `build:`, its include directories as repository paths. */
export interface BuildOptions {
  includes: string[];
  defines: Record<string, string | number | boolean>;
  cflags: string[];
}

export class CompileError extends Error {
  readonly output: string;
  constructor(message: string, output: string) {
    super(message);
    this.output = output;
  }
}

/** Returns the object's bytes, compiling only when the cache has no object for this digest. */
export async function compileBpfSource(tree: RepoTree, source: string, cacheDir: string, opts: { timeoutMs?: number; signal?: AbortSignal; build?: BuildOptions } = {}): Promise<Buffer> {
  const dir = posix.dirname(source);
  const includes = opts.build?.includes ?? [];
  // The source and every header under its directory and its include directories.
  const inputs = new Set<string>();
  for (const d of [dir, ...includes]) for (const p of await tree.listFiles(d === "." ? "" : d)) if (p === source || p.endsWith(".h")) inputs.add(p);
  const bytes = new Map<string, Buffer>();
  for (const p of inputs) bytes.set(p, (await tree.read(p)) ?? Buffer.alloc(0));
  // A vmlinux.h the repository ships (beside the source or in an include directory) is an input
  // like any header; without one, the running kernel's is generated and its BTF is in the key.
  const shipsVmlinux = [dir, ...includes].some((d) => inputs.has(posix.join(d, "vmlinux.h")));
  const t = bpfTarget();
  const flags = [
    ...BASE_FLAGS,
    `-D__TARGET_ARCH_${t.arch}`,
    ...Object.entries(opts.build?.defines ?? {}).map(([k, v]) => `-D${k}=${typeof v === "boolean" ? Number(v) : v}`),
    ...(opts.build?.cflags ?? []),
  ];
  mkdirSync(cacheDir, { recursive: true });
  const h = createHash("sha256").update(flags.join(" ")).update(t.clang).update(includes.join(":")).update(shipsVmlinux ? "vmlinux.h shipped" : kernelBtfDigest(cacheDir));
  for (const p of [...inputs].sort()) h.update(p).update(bytes.get(p)!);
  const digest = h.digest("hex");
  const cached = join(cacheDir, `${digest}.o`);
  if (existsSync(cached)) return readFileSync(cached);

  const work = mkdtempSync(join(cacheDir, "build-"));
  try {
    for (const p of inputs) {
      const dst = join(work, p);
      mkdirSync(posix.dirname(dst), { recursive: true });
      writeFileSync(dst, bytes.get(p)!);
    }
    if (!shipsVmlinux) writeFileSync(join(work, dir, "vmlinux.h"), await vmlinuxHeader(cacheDir));
    const out = join(work, "out.o");
    // The build directory is random: map it away so the same inputs give the same bytes.
    const clang = ["clang", ...flags, ...(t.multiarchInclude ? [`-I${t.multiarchInclude}`] : []), `-ffile-prefix-map=${work}=.`, `-I${join(work, dir)}`, ...includes.map((d) => `-I${join(work, d)}`), "-c", join(work, source), "-o", out];
    let r: Awaited<ReturnType<typeof runTool>>;
    try {
      r = await runTool("bwrap", [...sandbox(work), ...clang], { timeoutMs: opts.timeoutMs ?? COMPILE_TIMEOUT_MS, ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new CompileError(`compiling ${source} needs bubblewrap (bwrap), which keeps the compiler away from the host's files: apt install bubblewrap`, "");
      throw e;
    }
    if (r.timedOut) throw new CompileError(`clang did not finish ${source} within ${(opts.timeoutMs ?? COMPILE_TIMEOUT_MS) / 1000} s and was stopped`, "");
    if (r.code !== 0) {
      const stderr = r.stderr.replaceAll(work + "/", "");
      throw new CompileError(`clang failed on ${source}: ${stderr.split("\n").find((l) => l.includes("error:")) ?? (stderr.trim() || `exit ${r.code}`)}`, stderr);
    }
    renameSync(out, cached);
    return readFileSync(cached);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

let btfDigest: string | undefined;
/**
 * The digest of the running kernel's BTF. Hashing its megabytes is a third of a cached dry-run's
 * time, and the kernel image's BTF cannot change without a reboot, so it is hashed once per boot
 * and kept in the cache under the boot id.
 */
function kernelBtfDigest(cacheDir: string): string {
  if (btfDigest) return btfDigest;
  const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  btfDigest = notedDigest(join(cacheDir, `kernel-btf-${bootId}.sha256`), () => createHash("sha256").update(readFileSync("/sys/kernel/btf/vmlinux")).digest("hex"));
  return btfDigest;
}

async function vmlinuxHeader(cacheDir: string): Promise<Buffer> {
  const path = join(cacheDir, `vmlinux-${kernelBtfDigest(cacheDir).slice(0, 16)}.h`);
  if (!existsSync(path)) {
    const r = await runTool("bpftool", ["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new CompileError(`bpftool could not write vmlinux.h: ${r.stderr.trim() || (r.timedOut ? "timed out" : `exit ${r.code}`)}`, r.stderr);
    writeFileSync(path + ".tmp", r.stdout);
    renameSync(path + ".tmp", path);
  }
  return readFileSync(path);
}

const COMPILE_TIMEOUT_MS = 60_000;

/**
 * bubblewrap arguments: /usr read-only (clang, its resource headers, the system headers), the
 * build directory read-write, fresh /dev, /proc and /tmp, every namespace unshared (no network, no
 * host processes), killed with its parent. A source that includes or .incbin's a host file
 * (/etc/shadow, a fifo that would hang the build) finds nothing there.
 */
function sandbox(work: string): string[] {
  return [
    "--ro-bind", "/usr", "/usr",
    "--symlink", "usr/lib", "/lib",
    "--symlink", "usr/lib64", "/lib64",
    "--symlink", "usr/bin", "/bin",
    // /tmp first: the build directory may live under it, and a later mount would hide it.
    "--tmpfs", "/tmp",
    "--bind", work, work,
    "--dev", "/dev",
    "--proc", "/proc",
    "--unshare-all",
    "--die-with-parent",
    "--clearenv",
    "--setenv", "PATH", "/usr/bin:/bin",
    "--chdir", work,
  ];
}

/** Runs a tool to completion without blocking the event loop; killed (SIGKILL) at the time limit or on abort. */
export function runTool(cmd: string, args: string[], opts: { timeoutMs: number; signal?: AbortSignal }): Promise<{ code: number | null; stdout: Buffer; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    const onAbort = () => child.kill("SIGKILL");
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => {
      if (err.length < 1 << 20) err += d.toString();
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (opts.signal?.aborted) reject(opts.signal.reason);
      else resolve({ code, stdout: Buffer.concat(out), stderr: err, timedOut });
    });
  });
}
