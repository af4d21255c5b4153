// Suite-wide check that the tests cleaned up after themselves: after the last test, no lab
// namespace and no bpffs root that this run's test processes created may remain.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";

function leftovers(since: Set<string>): string[] {
  const netns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith("bpfops-t-"));
  let pins: string[] = [];
  try {
    pins = readdirSync("/sys/fs/bpf").filter((n) => n.startsWith("bpfops-test-"));
  } catch {
    // No bpffs: nothing can be left in it.
  }
  return [...netns.map((n) => `netns ${n}`), ...pins.map((p) => `/sys/fs/bpf/${p}`)].filter((x) => !since.has(x));
}

export default function setup(): () => void {
  if (process.getuid?.() !== 0) return () => undefined;
  const before = new Set(leftovers(new Set()));
  return () => {
    const left = leftovers(before);
    if (left.length) throw new Error(`the test suite left behind: ${left.join(", ")}`);
  };
}
