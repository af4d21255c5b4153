// Traffic through a lab: a counting receiver in the dst namespace and a paced UDP sender in the
// src namespace (worker processes started with nsenter), with a hook to act while packets flow.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { compiled } from "../package-root.ts";
import type { Lab } from "./netlab.ts";
import type { WorkerFlow } from "./traffic-worker.ts";

export interface Flow {
  name: string;
  dport: number;
  payload: Buffer;
  /** source address on the src side (one of lab.src.extraAddrs); default lab.src.addr */
  source?: string;
  /** share of packets relative to other flows (default 1) */
  weight?: number;
}

export interface TrafficReport {
  sent: Record<string, number>;
  sendFailed: Record<string, number>;
  received: Record<string, number>;
  /** datagrams dropped by the receiving socket layer (buffer overflow), not by any filter */
  socketDrops: number;
  seconds: number;
}

// Compiled, the worker is plain JavaScript beside this module; from the sources it needs tsx.
const workerPath = fileURLToPath(new URL(compiled ? "./traffic-worker.js" : "./traffic-worker.ts", import.meta.url));
const loaderArgs = compiled ? [] : ["--import", import.meta.resolve("tsx")];

class Worker {
  readonly child: ChildProcessWithoutNullStreams;
  readonly #waiters: Array<{ event: string; resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }> = [];
  #stderr = "";

  constructor(netns: string, mode: "send" | "receive", cfg: object, cgroup?: string) {
    const argv = ["nsenter", `--net=/var/run/netns/${netns}`, "--", process.execPath, ...loaderArgs, workerPath, mode, JSON.stringify(cfg)];
    // To run inside a cgroup, a shell moves itself there, then becomes the worker.
    this.child = cgroup
      ? spawn("sh", ["-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ...argv], { stdio: "pipe" })
      : spawn(argv[0]!, argv.slice(1), { stdio: "pipe" });
    this.child.stderr.on("data", (d: Buffer) => (this.#stderr += d.toString()));
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      const i = this.#waiters.findIndex((w) => w.event === msg.event);
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(msg);
    });
    this.child.on("exit", (code) => {
      for (const w of this.#waiters.splice(0)) w.reject(new Error(`traffic ${mode} in ${netns} exited (${code}) before "${w.event}": ${this.#stderr.trim()}`));
    });
  }
  waitFor(event: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => this.#waiters.push({ event, resolve, reject }));
  }
  command(line: string): void {
    this.child.stdin.write(line + "\n");
  }
  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

function toWorkerFlows(flows: Flow[]): WorkerFlow[] {
  return flows.map((f) => ({ name: f.name, dport: f.dport, payloadHex: f.payload.toString("hex"), ...(f.source ? { source: f.source } : {}), ...(f.weight ? { weight: f.weight } : {}) }));
}

/**
 * Sends `count` packets at `pps` from lab.src to lab.dst, spread over the flows, while `during`
 * runs; resolves with what was sent and what arrived once the receiver has drained.
 */
export async function runTraffic(
  lab: Lab,
  opts: {
    flows: Flow[];
    pps: number;
    /** packets to send (at most, with stopWhenDuringEnds) */
    count: number;
    during?: () => Promise<void>;
    /** stop sending as soon as `during` has finished, rather than after `count` packets */
    stopWhenDuringEnds?: boolean;
    senderCgroup?: string;
  },
): Promise<TrafficReport> {
  const flows = toWorkerFlows(opts.flows);
  const receiver = new Worker(lab.dst.netns, "receive", { flows });
  let sender: Worker | undefined;
  try {
    await receiver.waitFor("ready");
    sender = new Worker(lab.src.netns, "send", { flows, dst: lab.dst.addr, pps: opts.pps, count: opts.count }, opts.senderCgroup);
    const done = sender.waitFor("done");
    await sender.waitFor("started");
    if (opts.during) {
      try {
        await opts.during();
      } catch (e) {
        sender.command("stop");
        await done.catch(() => undefined);
        throw e;
      }
      if (opts.stopWhenDuringEnds) sender.command("stop");
    }
    const result = await done;
    // Let in-flight packets reach the receiver before counting.
    await new Promise((r) => setTimeout(r, 250));
    receiver.command("stop");
    const final = await receiver.waitFor("stopped");
    return {
      sent: result.sent as Record<string, number>,
      sendFailed: result.failed as Record<string, number>,
      received: final.counts as Record<string, number>,
      socketDrops: final.socketDrops as number,
      seconds: result.seconds as number,
    };
  } finally {
    sender?.kill();
    receiver.kill();
  }
}

export function sum(r: Record<string, number>, names?: string[]): number {
  return Object.entries(r).filter(([k]) => !names || names.includes(k)).reduce((a, [, v]) => a + v, 0);
}
