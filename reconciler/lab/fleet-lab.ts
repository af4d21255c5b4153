// A simulated fleet on this machine, for tests, benchmarks and the fleet demo: N hosts, each a
// network namespace (dst0, a veth to one shared traffic namespace) and a mount namespace with a
// bpffs of its own, kept alive by a namespace file; each host's agent is a real `bpfops agent`
// process started inside both with nsenter (Node cannot join a mount namespace itself). etcd,
// the controllers and the fleet CLI run in the traffic namespace: the fleet's network.
// destroy() (or process exit) removes every namespace, mount and process it made, also on failure.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Lab } from "./netlab.ts";
import { startEtcd, type EtcdServer } from "./etcd-server.ts";

export interface FleetHost {
  name: string;
  netns: string;
  /** the mount namespace file: nsenter --mount=<this> sees the host's own bpffs at /sys/fs/bpf */
  mountNs: string;
  /** the traffic namespace's end (src) and this host's end (dst, dst0): runTraffic(host.lab, ...) */
  lab: Lab;
  /** starts `bpfops agent --etcd ... --host <name> <args>` inside the host's namespaces (or, with { git: true }, `bpfops agent <args>` following git) */
  startAgent(args: string[], opts?: { git?: boolean }): ChildProcess;
  /** the address of the traffic namespace as this host reaches it (etcd, a git server there) */
  gateway: string;
  /** the running agent's output so far */
  logs(): string;
  /** SIGKILLs (or signals) the agent; resolves when it has exited */
  stopAgent(signal?: NodeJS.Signals): Promise<void>;
  /** runs a command inside the host's namespaces (bpftool, ip) */
  exec(cmd: string, args: string[]): string;
}

export interface FleetLab {
  id: string;
  traffic: string;
  hosts: FleetHost[];
  /** in the traffic namespace; hosts reach it at http://10.210.<i>.1:<port> */
  etcd: EtcdServer;
  /** runs `bpfops <args> --etcd <etcd> --fleet <fleet>` in the traffic namespace */
  cli(args: string[], timeoutMs?: number): { status: number | null; stdout: string; stderr: string };
  /** the same, not blocking this process (for commands that wait, like `rollout start --wait`) */
  cliAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }>;
  /** the same on a terminal (script(1)): what it wrote, escape sequences and all */
  cliAsyncTty(args: string[]): Promise<string>;
  /** starts `bpfops controller ... <args>` in the traffic namespace */
  startController(args: string[]): ChildProcess & { logs(): string };
  /** the agents' cache directories live under here */
  dir: string;
  destroy(): Promise<void>;
}

const DEFAULT_BIN = new URL("../../bin/bpfops.cjs", import.meta.url).pathname;
/** Each live lab's teardown, run at exit: synchronous, since nothing asynchronous runs after it. */
const labs = new Map<FleetLab, () => void>();
let counter = 0;
process.on("exit", () => {
  for (const teardown of labs.values()) teardown();
});

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const quiet = (cmd: string, args: string[]) => {
  try {
    run(cmd, args);
  } catch {
    // already gone
  }
};

/**
 * N hosts named <prefix>-<pid>-<n>-h<i>; host i's dst0 is 10.210.i.2/24, its peer t<i> in the
 * traffic namespace 10.210.i.1/24 (with a static neighbour entry, as netlab does).
 */
export async function createFleetLab(n: number, opts: { prefix?: string; fleet: string; env?: Record<string, string>; /** the bpfops entry to run (default bin/bpfops.cjs; benchmarks run the built dist/bpfops.cjs) */ bin?: string }): Promise<FleetLab> {
  const BIN = opts.bin ?? DEFAULT_BIN;
  if (n < 1 || n > 250) throw new RangeError("a fleet lab has 1 to 250 hosts");
  const id = `${opts.prefix ?? "bpfops-f"}-${process.pid.toString(36)}-${counter++}`;
  const dir = mkdtempSync(join(tmpdir(), `${id}-`));
  // Namespace files live on a private bind mount of their own (a mount namespace cannot be bound
  // onto a shared mount).
  const nsDir = join(dir, "ns");
  mkdirSync(nsDir);
  const traffic = `${id}-tr`;
  const hosts: FleetHost[] = [];
  const made = { nsDirMounted: false, netns: [] as string[], mountNs: [] as string[] };
  const agents = new Set<ChildProcess>();
  /** nsenter's arguments for `bpfops <args> --etcd <etcd> --fleet <fleet>` in the traffic namespace. */
  const inTraffic = (args: string[]) => [`--net=/var/run/netns/${traffic}`, "--", process.execPath, BIN, ...args, "--etcd", lab.etcd.url, "--fleet", opts.fleet];
  const lab: FleetLab = {
    id,
    traffic,
    hosts,
    dir,
    etcd: undefined as unknown as EtcdServer,
    cli(args, timeoutMs = 120_000) {
      const r = spawnSync("nsenter", inTraffic(args), { encoding: "utf8", timeout: timeoutMs });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    cliAsync(args) {
      return new Promise((resolve) => {
        const c = spawn("nsenter", inTraffic(args), { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        c.stdout.on("data", (d) => (stdout += d));
        c.stderr.on("data", (d) => (stderr += d));
        c.on("exit", (status) => resolve({ status, stdout, stderr }));
      });
    },
    cliAsyncTty(args) {
      const line = ["nsenter", ...inTraffic(args)].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
      return new Promise((resolve) => {
        const c = spawn("script", ["-qec", line, "/dev/null"], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        c.stdout.on("data", (d) => (out += d));
        c.on("exit", () => resolve(out));
      });
    },
    startController(args) {
      const c = spawn("nsenter", inTraffic(["controller", ...args]), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } }) as ChildProcess & { logs(): string };
      let out = "";
      c.stdout!.on("data", (d) => (out += d));
      c.stderr!.on("data", (d) => (out += d));
      c.logs = () => out;
      agents.add(c);
      c.on("exit", () => agents.delete(c));
      return c;
    },
    async destroy() {
      labs.delete(lab);
      await lab.etcd?.stop();
      teardown();
    },
  };
  // (etcd, at exit, is killed and its directory removed by etcd-server's own exit hook)
  const teardown = () => {
    for (const a of agents) if (a.exitCode === null && a.signalCode === null) a.kill("SIGKILL");
    for (const f of made.mountNs) quiet("umount", [f]);
    if (made.nsDirMounted) quiet("umount", [nsDir]);
    for (const ns of made.netns) quiet("ip", ["netns", "del", ns]);
    rmSync(dir, { recursive: true, force: true });
  };
  labs.set(lab, teardown);
  try {
    run("mount", ["--bind", nsDir, nsDir]);
    made.nsDirMounted = true;
    run("mount", ["--make-private", nsDir]);
    const addNetns = (ns: string) => {
      run("ip", ["netns", "add", ns]);
      made.netns.push(ns);
      for (const scope of ["all", "default"]) run("nsenter", [`--net=/var/run/netns/${ns}`, "sysctl", "-q", "-w", `net.ipv6.conf.${scope}.disable_ipv6=1`]);
      run("ip", ["-n", ns, "link", "set", "lo", "up"]);
    };
    addNetns(traffic);
    for (let i = 0; i < n; i++) {
      const name = `h${i}`;
      const netns = `${id}-${name}`;
      addNetns(netns);
      run("ip", ["link", "add", `t${i}`, "netns", traffic, "type", "veth", "peer", "name", "dst0", "netns", netns]);
      run("ip", ["-n", traffic, "addr", "add", `10.210.${i}.1/24`, "dev", `t${i}`]);
      run("ip", ["-n", netns, "addr", "add", `10.210.${i}.2/24`, "dev", "dst0"]);
      run("ip", ["-n", traffic, "link", "set", `t${i}`, "up"]);
      run("ip", ["-n", netns, "link", "set", "dst0", "up"]);
      const mac = /link\/ether ([0-9a-f:]+)/.exec(run("ip", ["-n", netns, "link", "show", "dst0"]))![1]!;
      run("ip", ["-n", traffic, "neigh", "replace", `10.210.${i}.2`, "lladdr", mac, "dev", `t${i}`, "nud", "permanent"]);
      // The host's own bpffs, in a mount namespace the file keeps alive.
      const mountNs = join(nsDir, name);
      writeFileSync(mountNs, "");
      run("unshare", [`--mount=${mountNs}`, "--propagation", "private", "sh", "-c", "mount -t bpf bpf /sys/fs/bpf && { mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing; }"]);
      made.mountNs.push(mountNs);
      let out = "";
      let agent: ChildProcess | undefined;
      const cache = join(dir, `cache-${name}`);
      const enter = [`--mount=${mountNs}`, `--net=/var/run/netns/${netns}`];
      hosts.push({
        name,
        netns,
        mountNs,
        lab: {
          id: `${id}-${name}`,
          src: { netns: traffic, ifname: `t${i}`, addr: `10.210.${i}.1`, extraAddrs: [] },
          dst: { netns, ifname: "dst0", addr: `10.210.${i}.2` },
          destroy() {},
        },
        gateway: `10.210.${i}.1`,
        startAgent(args, how = {}) {
          out = "";
          const follow = how.git ? [] : ["--etcd", `http://10.210.${i}.1:${lab.etcd.port}`, "--fleet", opts.fleet, "--host", name];
          agent = spawn("nsenter", [...enter, "--", process.execPath, BIN, "agent", ...follow, "--cache", cache, "--listen", "127.0.0.1:0", ...args], {
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, ...opts.env },
          });
          agent.stdout!.on("data", (d) => (out += d));
          agent.stderr!.on("data", (d) => (out += d));
          agents.add(agent);
          agent.on("exit", () => agents.delete(agent!));
          return agent;
        },
        logs: () => out,
        async stopAgent(signal = "SIGKILL") {
          const a = agent;
          if (!a || a.exitCode !== null || a.signalCode !== null) return;
          const gone = new Promise((r) => a.once("exit", r));
          a.kill(signal);
          await gone;
        },
        exec: (cmd, args) => run("nsenter", [...enter, "--", cmd, ...args]),
      });
    }
    lab.etcd = await startEtcd({ prefix: `${id}-etcd`, netns: traffic });
  } catch (e) {
    await lab.destroy();
    throw new Error(`create fleet lab ${id}: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
  }
  return lab;
}
