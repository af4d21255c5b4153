// A throwaway etcd for tests, benchmarks and the fleet demo: Debian's etcd on ports of its own,
// on loopback or (in a fleet lab) on every address of a network namespace, with a temporary data
// directory; stop() (or process exit) kills it and removes the directory. It can be killed and
// started again on the same data (etcd going away mid-rollout).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface EtcdServer {
  /** the client URL, http://127.0.0.1:<port> (inside its network namespace, when it has one) */
  url: string;
  port: number;
  /** kills etcd (SIGKILL: a crash, as a partition looks to its clients); the data stays */
  kill(): Promise<void>;
  /** starts it again on the same ports and data */
  restart(): Promise<void>;
  /** kills it and removes its data */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
/** Data directories of servers not stopped yet: removed at exit with their killed servers. */
const dirs = new Set<string>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts etcd. With netns, it runs inside that namespace (a fleet lab's traffic namespace) and
 * listens on all its addresses, so that hosts reach it over their veth.
 */
export async function startEtcd(opts: { prefix?: string; netns?: string; /** serve TLS and require client certificates signed by ca */ tls?: { ca: string; cert: string; key: string } } = {}): Promise<EtcdServer> {
  const prefix = opts.prefix ?? "bpfops-etcd";
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  dirs.add(dir);
  // A fresh namespace has every port free; on the host's loopback, ask the kernel for free ones.
  const [client, peer] = opts.netns ? [2379, 2380] : [await freePort(), await freePort()];
  const scheme = opts.tls ? "https" : "http";
  const url = `${scheme}://127.0.0.1:${client}`;
  const listen = opts.netns ? `${scheme}://0.0.0.0:${client}` : url;
  const tls = opts.tls ? ["--client-cert-auth", "--trusted-ca-file", opts.tls.ca, "--cert-file", opts.tls.cert, "--key-file", opts.tls.key] : [];
  let child: ChildProcess | undefined;
  const launch = async () => {
    let out = "";
    const argv = ["etcd", "--name", `${prefix}-${process.pid}`, "--data-dir", join(dir, "data"), "--listen-client-urls", listen, "--advertise-client-urls", url, "--listen-peer-urls", `http://127.0.0.1:${peer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${peer}`, "--initial-cluster", `${prefix}-${process.pid}=http://127.0.0.1:${peer}`, ...tls];
    const c = opts.netns ? spawn("nsenter", [`--net=/var/run/netns/${opts.netns}`, "--", ...argv], { stdio: ["ignore", "pipe", "pipe"] }) : spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    live.add(c);
    c.on("exit", () => live.delete(c));
    child = c;
    // Ready when it says so (its log is on stderr): it may sit in a namespace this process is not in.
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      const onData = (d: Buffer) => {
        out += d;
        if (/ready to serve client requests/.test(out)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      c.stdout!.on("data", onData);
      c.stderr!.on("data", onData);
      c.once("exit", () => resolve(false));
    });
    if (ready) return;
    c.kill("SIGKILL");
    throw new Error(`etcd did not start on ${listen}:\n${out.slice(-2000)}`);
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await gone;
  };
  await launch();
  return {
    url,
    port: client,
    kill,
    restart: launch,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}
