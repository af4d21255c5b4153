// A throwaway etcd for tests, benchmarks and the fleet demo: Debian's etcd on loopback ports of
// its own, with a temporary data directory; stop() (or process exit) kills it and removes the
// directory. It can be stopped and started again on the same data (etcd going away mid-rollout).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface EtcdServer {
  /** the client URL, http://127.0.0.1:<port> */
  url: string;
  /** kills etcd (SIGKILL: a crash, as a partition looks to its clients); the data stays */
  kill(): Promise<void>;
  /** starts it again on the same ports and data */
  restart(): Promise<void>;
  /** kills it and removes its data */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
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

export async function startEtcd(prefix = "bpfops-etcd"): Promise<EtcdServer> {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  let child: ChildProcess | undefined;
  const launch = async () => {
    let out = "";
    const c = spawn(
      "etcd",
      ["--name", `${prefix}-${process.pid}`, "--data-dir", join(dir, "data"), "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", `http://127.0.0.1:${peer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${peer}`, "--initial-cluster", `${prefix}-${process.pid}=http://127.0.0.1:${peer}`, "--log-level", "error"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    c.stdout!.on("data", (d) => (out += d));
    c.stderr!.on("data", (d) => (out += d));
    live.add(c);
    c.on("exit", () => live.delete(c));
    child = c;
    for (let i = 0; i < 200; i++) {
      try {
        const r = await fetch(`${url}/health`);
        if (r.ok && ((await r.json()) as { health: string }).health === "true") return;
      } catch {
        // not listening yet
      }
      if (c.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    c.kill("SIGKILL");
    throw new Error(`etcd did not start on ${url}:\n${out.slice(-2000)}`);
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
    kill,
    restart: launch,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
