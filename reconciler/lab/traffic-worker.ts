// The traffic worker, run inside a lab namespace with nsenter: "send" paces UDP flows at a
// fixed rate; "receive" counts arrivals per flow. Both speak JSON lines on stdin/stdout.
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

export interface WorkerFlow {
  name: string;
  dport: number;
  payloadHex: string;
  source?: string;
  weight?: number;
}

function out(msg: object): void {
  process.stdout.write(JSON.stringify(msg) + "\n");
}

/**
 * UDP InErrors of this namespace: datagrams the socket layer dropped. A drop for a full receive
 * buffer counts in RcvbufErrors and in InErrors both (the kernel charges ENOMEM twice), so
 * InErrors alone is the number of datagrams lost.
 */
function udpErrors(): { inErrors: number } {
  const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp:"));
  const names = (lines[0] ?? "").split(/\s+/);
  const vals = (lines[1] ?? "").split(/\s+/).map(Number);
  return { inErrors: vals[names.indexOf("InErrors")] ?? 0 };
}

function receive(flows: WorkerFlow[]): void {
  const byPayload = new Map(flows.map((f) => [Buffer.from(f.payloadHex, "hex").toString("latin1"), f.name]));
  const counts: Record<string, number> = Object.fromEntries(flows.map((f) => [f.name, 0]));
  counts.unknown = 0;
  const before = udpErrors();
  const ports = [...new Set(flows.map((f) => f.dport))];
  let bound = 0;
  const sockets = ports.map((port) => {
    const s = dgram.createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
    s.on("message", (msg) => {
      const name = byPayload.get(msg.toString("latin1")) ?? "unknown";
      counts[name] = (counts[name] ?? 0) + 1;
    });
    s.bind(port, "0.0.0.0", () => {
      if (++bound === ports.length) out({ event: "ready" });
    });
    return s;
  });
  const report = () => {
    const now = udpErrors();
    return { counts, socketDrops: now.inErrors - before.inErrors };
  };
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line === "report") out({ event: "report", ...report() });
    if (line === "stop") {
      out({ event: "stopped", ...report() });
      for (const s of sockets) s.close();
      process.exit(0);
    }
  });
}

async function send(flows: WorkerFlow[], dst: string, pps: number, count: number): Promise<void> {
  const sockets = new Map<string, dgram.Socket>();
  for (const src of new Set(flows.map((f) => f.source ?? ""))) {
    const s = dgram.createSocket({ type: "udp4", sendBufferSize: 4 << 20 });
    await new Promise<void>((res) => s.bind(0, src || undefined, res));
    sockets.set(src, s);
  }
  // Weighted round-robin schedule of flow indexes.
  const schedule: number[] = [];
  flows.forEach((f, i) => {
    for (let w = 0; w < (f.weight ?? 1); w++) schedule.push(i);
  });
  const payloads = flows.map((f) => Buffer.from(f.payloadHex, "hex"));
  const sent: Record<string, number> = Object.fromEntries(flows.map((f) => [f.name, 0]));
  const failed: Record<string, number> = Object.fromEntries(flows.map((f) => [f.name, 0]));
  let issued = 0;
  let done = 0;
  let stopping = false;
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line === "stop") stopping = true;
  });
  out({ event: "started" });
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
      const due = Math.min(count, Math.floor(elapsed * pps));
      let burst = 0;
      while (issued < due && burst < 512 && !stopping) {
        const i = schedule[issued % schedule.length] ?? 0;
        const f = flows[i]!;
        issued++;
        burst++;
        sockets.get(f.source ?? "")!.send(payloads[i]!, f.dport, dst, (err) => {
          if (err) failed[f.name]!++;
          else sent[f.name]!++;
          if (++done === issued && (issued >= count || stopping)) resolve();
        });
      }
      if ((issued >= count || stopping) && done === issued) return resolve();
      if (issued < count && !stopping) setTimeout(tick, burst === 512 ? 0 : 1);
    };
    tick();
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  out({ event: "done", sent, failed, seconds });
  for (const s of sockets.values()) s.close();
  process.exit(0);
}

const [mode, arg] = process.argv.slice(2);
const cfg = JSON.parse(arg ?? "{}") as { flows: WorkerFlow[]; dst?: string; pps?: number; count?: number };
if (mode === "receive") receive(cfg.flows);
else if (mode === "send") void send(cfg.flows, cfg.dst!, cfg.pps ?? 10000, cfg.count ?? 1000);
else {
  process.stderr.write(`traffic-worker: unknown mode ${mode}\n`);
  process.exit(2);
}
