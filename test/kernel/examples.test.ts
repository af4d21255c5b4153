// The example repositories under manifests/examples, each reconciled as it is written (its BPF C
// compiled by bpfops) into a throwaway root, with the hook moved onto the lab where it names an
// interface, then exercised: traffic for the XDP ones, execs, TCP retransmits and file opens for
// the tracing ones, read back with `bpfops map dump` and `bpfops events`.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { runTraffic } from "../../reconciler/lab/traffic.ts";
import { needs, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo } from "./repos.ts";

const EXAMPLES = new URL("../../manifests/examples/", import.meta.url).pathname;
const bpfops = (args: string[]) => spawnSync(process.execPath, ["bin/bpfops.cjs", ...args], { encoding: "utf8" });

/** A copy of an example repository; an XDP hook on eth0 moves onto the lab's receiving interface. */
function example(name: string, lab?: Lab, edit: (yaml: string) => string = (y) => y): string {
  const dir = mkdtempSync(join(tmpdir(), `bpfops-example-${name}-`));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(EXAMPLES, name), dir, { recursive: true });
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".yaml"))) {
    let y = readFileSync(join(dir, f), "utf8");
    if (lab) y = y.replace("hook: { type: xdp, interfaces: [eth0] }", `hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] }`);
    writeFileSync(join(dir, f), edit(y));
  }
  return dir;
}

const dump = (root: string, map: string) => {
  const r = bpfops(["map", "dump", map, "--bpffs", root, "--output", "json", "--sum"]);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { entries: Array<{ key: unknown; value: unknown }> }).entries;
};

describe("examples", () => {
  it("the examples directory holds the five documented examples", () => {
    expect(readdirSync(EXAMPLES).sort()).toEqual(["ddos-blocklist", "exec-counter", "l4-allow-policy", "security-events", "tcp-retransmits"]);
  });

  it("ddos-blocklist: a blocked /32 is dropped, the rest passes, and the drops are counted", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const bad = lab.src.extraAddrs[0]!;
    await applyRepo(example("ddos-blocklist", lab, (y) => y.replace("- { key: 198.51.100.7/32, value: 1 }", `- { key: ${bad}/32, value: 1 }`)), root);
    const flows = [
      { name: "good", dport: 7000, payload: Buffer.from("ok") },
      { name: "bad", dport: 7001, payload: Buffer.from("flood"), source: bad },
    ];
    const t = await runTraffic(lab, { flows, pps: 20_000, count: 6_000 });
    expect(t.received.good).toBe(t.sent.good);
    expect(t.received.bad).toBe(0);
    expect(dump(root, "ddos-blocklist/drops")).toEqual([{ key: 0, value: t.sent.bad }]);
    expect(dump(root, "blocklist").map((e) => e.key)).toEqual(expect.arrayContaining([{ addr: "192.0.2.0/24" }, { addr: `${bad}/32` }]));
  });

  it("l4-allow-policy: the granted (source, port, protocol) passes and nothing else does", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    await applyRepo(example("l4-allow-policy", lab, (y) => y.replace("{ saddr: 10.0.0.10, dport: 80, proto: tcp }", `{ saddr: ${lab.src.addr}, dport: 80, proto: udp }`)), root);
    // (The receiver tells flows apart by payload.)
    const granted = await runTraffic(lab, { flows: [{ name: "frontend", dport: 80, payload: Buffer.from("GET /") }, { name: "other-port", dport: 81, payload: Buffer.from("GET /admin") }], pps: 20_000, count: 4_000 });
    expect([granted.received.frontend, granted.received["other-port"]]).toEqual([granted.sent.frontend, 0]);
    const otherHost = await runTraffic(lab, { flows: [{ name: "other-host", dport: 80, payload: Buffer.from("GET /"), source: lab.src.extraAddrs[0]! }], pps: 20_000, count: 2_000 });
    expect(otherHost.received["other-host"]).toBe(0);
    expect(dump(root, "l4-allow/allow_verdicts")).toEqual([
      { key: 0, value: granted.sent.frontend },
      { key: 1, value: granted.sent["other-port"]! + otherHost.sent["other-host"]! },
    ]);
  });

  it("exec-counter: execs of this user are counted per uid", async (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    await applyRepo(example("exec-counter"), root);
    const before = (dump(root, "exec-counts").find((e) => e.key === 0)?.value as number | undefined) ?? 0;
    for (let i = 0; i < 20; i++) execFileSync("/bin/true");
    const after = dump(root, "exec-counts").find((e) => e.key === 0)!.value as number;
    expect(after - before).toBeGreaterThanOrEqual(20);
  });

  it("tcp-retransmits: segments to a destination that stopped answering are counted under its address", async (ctx) => {
    needs(ctx);
    const lab = tempLab();
    const root = tempPinRoot();
    await applyRepo(example("tcp-retransmits"), root);
    const py = (netns: string, code: string) => spawn("ip", ["netns", "exec", netns, "python3", "-c", code], { stdio: "ignore" });
    const server = py(lab.dst.netns, "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',9000))\ns.listen()\nc,_=s.accept()\ntime.sleep(20)");
    onTestFinished(() => void server.kill("SIGKILL"));
    await new Promise((r) => setTimeout(r, 500));
    // Connect, then the destination goes silent (its interface down) while the client sends.
    const client = py(lab.src.netns, `import socket,time,subprocess\ns=socket.create_connection(('${lab.dst.addr}',9000),timeout=5)\nsubprocess.run(['ip','-n','${lab.dst.netns}','link','set','dst0','down'])\ns.send(b'x'*1000)\ntime.sleep(3)`);
    onTestFinished(() => void client.kill("SIGKILL"));
    await new Promise<void>((r) => client.on("exit", () => r()));
    const counted = dump(root, "tcp-retransmits").find((e) => (e.key as { daddr?: string }).daddr === lab.dst.addr);
    expect(counted?.value as number).toBeGreaterThanOrEqual(2);
  });

  it("security-events: one ring buffer, two programs, records printed decoded by bpfops events", async (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    await applyRepo(example("security-events"), root);
    const marker = join(tmpdir(), `bpfops-sec-${process.pid}`);
    writeFileSync(marker, "x");
    onTestFinished(() => rmSync(marker, { force: true }));
    const reader = spawn(process.execPath, ["bin/bpfops.cjs", "events", "security-events", "--bpffs", root, "--seconds", "4"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    reader.stdout.on("data", (d) => (out += d));
    await new Promise((r) => setTimeout(r, 1500));
    execFileSync("/bin/cat", [marker]);
    await new Promise<void>((r) => reader.on("exit", () => r()));
    const records = out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { kind: string; comm: string; path: string; pid: number });
    // From the exec program (sched_process_exec) and the open program (sys_enter_openat).
    expect(records).toContainEqual(expect.objectContaining({ kind: "SEC_EXEC", comm: "cat", path: "/bin/cat" }));
    expect(records).toContainEqual(expect.objectContaining({ kind: "SEC_OPEN", comm: "cat", path: marker }));
  });
});
