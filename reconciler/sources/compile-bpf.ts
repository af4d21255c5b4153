// Compiles a .bpf.c source from the repository with clang, cached by content digest: the source,
// every header beside it, the compiler flags and the kernel's BTF (vmlinux.h is generated from it).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import type { RepoTree } from "./repo-tree.ts";

const FLAGS = ["-O2", "-g", "-Wall", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I/usr/include/x86_64-linux-gnu"];

export class CompileError extends Error {
  readonly output: string;
  constructor(message: string, output: string) {
    super(message);
    this.output = output;
  }
}

/** Returns the object's bytes, compiling only when the cache has no object for this digest. */
export function compileBpfSource(tree: RepoTree, source: string, cacheDir: string): Buffer {
  const dir = posix.dirname(source);
  // The source and every header under its directory; vmlinux.h comes from the running kernel.
  const inputs = tree
    .listFiles(dir === "." ? "" : dir)
    .filter((p) => p === source || (p.endsWith(".h") && posix.basename(p) !== "vmlinux.h"));
  const h = createHash("sha256").update(FLAGS.join(" ")).update(kernelBtfDigest());
  for (const p of inputs.sort()) h.update(p).update(tree.read(p) ?? "");
  const digest = h.digest("hex");
  mkdirSync(cacheDir, { recursive: true });
  const cached = join(cacheDir, `${digest}.o`);
  if (existsSync(cached)) return readFileSync(cached);

  const work = mkdtempSync(join(cacheDir, "build-"));
  try {
    for (const p of inputs) {
      const dst = join(work, p);
      mkdirSync(posix.dirname(dst), { recursive: true });
      writeFileSync(dst, tree.read(p)!);
    }
    writeFileSync(join(work, dir, "vmlinux.h"), vmlinuxHeader(cacheDir));
    const out = join(work, "out.o");
    try {
      // The build directory is random: map it away so the same inputs give the same bytes.
      execFileSync("clang", [...FLAGS, `-ffile-prefix-map=${work}=.`, `-I${join(work, dir)}`, "-c", join(work, source), "-o", out], { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      const stderr = String((e as { stderr?: Buffer }).stderr ?? "").replaceAll(work + "/", "");
      throw new CompileError(`clang failed on ${source}: ${stderr.split("\n").find((l) => l.includes("error:")) ?? "see output"}`, stderr);
    }
    renameSync(out, cached);
    return readFileSync(cached);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

let btfDigest: string | undefined;
function kernelBtfDigest(): string {
  btfDigest ??= createHash("sha256").update(readFileSync("/sys/kernel/btf/vmlinux")).digest("hex");
  return btfDigest;
}

function vmlinuxHeader(cacheDir: string): Buffer {
  const path = join(cacheDir, `vmlinux-${kernelBtfDigest().slice(0, 16)}.h`);
  if (!existsSync(path)) {
    const h = execFileSync("bpftool", ["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"], { maxBuffer: 1 << 28 });
    writeFileSync(path + ".tmp", h);
    renameSync(path + ".tmp", path);
  }
  return readFileSync(path);
}
