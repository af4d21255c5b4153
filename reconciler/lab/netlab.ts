// A throwaway network lab for kernel tests and the demo: two uniquely named network namespaces
// joined by a veth pair, removed on destroy() or at process exit, even when a test fails.
import { execFileSync } from "node:child_process";

export interface LabEnd {
  /** namespace name under /var/run/netns */
  netns: string;
  ifname: string;
  addr: string;
}

export interface Lab {
  id: string;
  /** where traffic comes from; extra source addresses live here too */
  src: LabEnd & { extraAddrs: string[] };
  /** where traffic goes; filters are attached to dst.ifname */
  dst: LabEnd;
  destroy(): void;
}

const live = new Set<string>();
let counter = 0;
let exitHookInstalled = false;

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function deleteNetns(name: string): void {
  try {
    ip("netns", "del", name);
  } catch {
    // Already gone.
  }
}

/**
 * Creates <prefix>-<pid>-<n>-src and -dst namespaces with a veth pair (src0 10.199.0.1/24 <->
 * dst0 10.199.0.2/24) and extra source addresses 10.199.0.101.. on src0. The pid in the name
 * lets sweepStaleLabs() remove what a killed run left behind, and nothing else.
 */
export function createLab(opts: { prefix?: string; extraSourceAddrs?: number; /** exactly <prefix>-src and <prefix>-dst (the example manifests name these) */ fixedNames?: boolean } = {}): Lab {
  const prefix = opts.prefix ?? "bpfops-t";
  const id = opts.fixedNames ? prefix : `${prefix}-${process.pid.toString(36)}-${counter++}`;
  const src = `${id}-src`;
  const dst = `${id}-dst`;
  installExitHook();
  live.add(src);
  live.add(dst);
  const extraAddrs = Array.from({ length: opts.extraSourceAddrs ?? 2 }, (_, i) => `10.199.0.${101 + i}`);
  try {
    ip("netns", "add", src);
    ip("netns", "add", dst);
    // No IPv6: neighbour discovery would put packets on the wire that tests do not count.
    for (const ns of [src, dst]) {
      for (const scope of ["all", "default"]) {
        execFileSync("nsenter", [`--net=/var/run/netns/${ns}`, "sysctl", "-q", "-w", `net.ipv6.conf.${scope}.disable_ipv6=1`], { stdio: "ignore" });
      }
    }
    ip("link", "add", "src0", "netns", src, "type", "veth", "peer", "name", "dst0", "netns", dst);
    ip("-n", src, "addr", "add", "10.199.0.1/24", "dev", "src0");
    for (const a of extraAddrs) ip("-n", src, "addr", "add", `${a}/24`, "dev", "src0");
    ip("-n", dst, "addr", "add", "10.199.0.2/24", "dev", "dst0");
    for (const [ns, dev] of [[src, "src0"], [dst, "dst0"]] as const) {
      ip("-n", ns, "link", "set", "lo", "up");
      ip("-n", ns, "link", "set", dev, "up");
    }
    // Static neighbours: no ARP exchange, which XDP programs would otherwise have to let through.
    const mac = (ns: string, dev: string) => /link\/ether ([0-9a-f:]+)/.exec(ip("-n", ns, "link", "show", dev))?.[1] ?? "";
    ip("-n", src, "neigh", "replace", "10.199.0.2", "lladdr", mac(dst, "dst0"), "dev", "src0", "nud", "permanent");
  } catch (e) {
    destroy();
    throw new Error(`create lab ${id}: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
  }
  function destroy(): void {
    for (const ns of [src, dst]) {
      deleteNetns(ns);
      live.delete(ns);
    }
  }
  return {
    id,
    src: { netns: src, ifname: "src0", addr: "10.199.0.1", extraAddrs },
    dst: { netns: dst, ifname: "dst0", addr: "10.199.0.2" },
    destroy,
  };
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const ns of live) deleteNetns(ns);
  });
}

/** Removes lab namespaces with this prefix whose creating process is dead; returns their names. */
export function sweepStaleLabs(prefix = "bpfops-t"): string[] {
  const removed: string[] = [];
  const re = new RegExp(`^${prefix.replace(/[-]/g, "\\-")}-([0-9a-z]+)-\\d+-(src|dst)$`);
  for (const line of ip("netns", "list").split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = re.exec(name);
    if (!m?.[1]) continue;
    const pid = parseInt(m[1], 36);
    if (pidAlive(pid)) continue;
    deleteNetns(name);
    removed.push(name);
  }
  return removed;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
