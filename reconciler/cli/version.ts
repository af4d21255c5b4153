// `bpfops --version`: bpfops's version, the commit it was built from when known, and the libbpf
// and kernel it runs on.
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { buildInfo, packageRoot, packageVersion } from "../package-root.ts";

/** The commit: recorded at build time (an installed package), or read from the checkout's .git. */
function commit(root: string): string | null {
  const info = buildInfo();
  if (info && !existsSync(join(root, ".git"))) return info.commit ?? null;
  try {
    const head = readFileSync(join(root, ".git/HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    const loose = join(root, ".git", ref);
    if (existsSync(loose)) return readFileSync(loose, "utf8").trim();
    const packed = readFileSync(join(root, ".git/packed-refs"), "utf8").split("\n").find((l) => l.endsWith(` ${ref}`));
    return packed?.split(" ")[0] ?? null;
  } catch {
    return null;
  }
}

export async function versionText(): Promise<string> {
  const root = packageRoot();
  const version = packageVersion();
  let libbpf: string;
  try {
    const { native } = await import("../kernel/native.ts");
    libbpf = native.libbpfVersion();
  } catch (e) {
    libbpf = `unknown (${(e as Error).message.split("\n")[0]})`;
  }
  const c = commit(root);
  return [`bpfops ${version}${c ? ` (commit ${c.slice(0, 12)})` : ""}`, `libbpf ${libbpf}`, `kernel ${release()}`, `node ${process.versions.node}`].join("\n");
}
