// What a .bpf.c build targets on this host: the architecture libbpf's tracing macros need
// (__TARGET_ARCH_x86, _arm64, ...), the multiarch directory of the system headers (asm/types.h
// lives there), and the clang that compiles; found on the host, never assumed.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

/** Node's process.arch -> libbpf's __TARGET_ARCH_ name and the Debian multiarch triplet. */
const ARCHES: Record<string, { bpf: string; triplet: string }> = {
  x64: { bpf: "x86", triplet: "x86_64-linux-gnu" },
  arm64: { bpf: "arm64", triplet: "aarch64-linux-gnu" },
  arm: { bpf: "arm", triplet: "arm-linux-gnueabihf" },
  s390x: { bpf: "s390", triplet: "s390x-linux-gnu" },
  ppc64: { bpf: "powerpc", triplet: "powerpc64le-linux-gnu" },
  riscv64: { bpf: "riscv", triplet: "riscv64-linux-gnu" },
  loong64: { bpf: "loongarch", triplet: "loongarch64-linux-gnu" },
  mips64el: { bpf: "mips", triplet: "mips64el-linux-gnuabi64" },
};

export interface BpfTarget {
  /** __TARGET_ARCH_<this> */
  arch: string;
  /** -I of the system's multiarch headers, or null when there is none (clang then says what is missing) */
  multiarchInclude: string | null;
  /** clang's --version first line: part of every object's cache key */
  clang: string;
}

let target: BpfTarget | undefined;

/** This host's target, found once per process. */
export function bpfTarget(): BpfTarget {
  if (target) return target;
  const a = ARCHES[process.arch];
  if (!a) throw new Error(`compiling .bpf.c sources on ${process.arch} is not supported: no __TARGET_ARCH_ for it`);
  // gcc knows the triplet where it is installed; otherwise the table's, if its headers are there.
  let triplet = a.triplet;
  try {
    triplet = execFileSync("gcc", ["-print-multiarch"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || triplet;
  } catch {
    // no gcc: the table's triplet
  }
  const include = `/usr/include/${triplet}`;
  let clang = "clang (version unknown)";
  try {
    clang = execFileSync("clang", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0]!.trim();
  } catch {
    // compiling will say clang is missing
  }
  target = { arch: a.bpf, multiarchInclude: existsSync(`${include}/asm`) ? include : null, clang };
  return target;
}
