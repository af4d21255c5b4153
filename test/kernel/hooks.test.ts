// Hook types by their manifests, each attached, observed running (traffic, calls, messages),
// swapped to a new version by its documented strategy and pruned: netfilter, sk_lookup,
// flow_dissector, cgroup sockopt, perf_event, uprobe/uretprobe, sk_msg and sk_skb on a sockmap, a load-only
// socket filter an application picks up; several XDP programs on one interface through bpfops's
// dispatcher, and several tcx programs on one hook, in a declared order.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { createSocket } from "node:dgram";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, afterAll, describe, expect, it } from "vitest";
import { runTraffic, sum, type Flow } from "../../reconciler/lab/traffic.ts";
import { queryTcxHook } from "../../reconciler/kernel/observe.ts";
import { listPins, openPinnedMap } from "../../reconciler/kernel/pins.ts";
import type { MapHandle } from "../../reconciler/kernel/handles.ts";
import { layout } from "../../reconciler/core/layout.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { needs, tempCgroup, tempLab, tempPinRoot, until } from "./harness.ts";
import { applyRepo, HDR, tempRepo, writeRepo } from "./repos.ts";

/** A Program (versioned, its hook_counts pinned) and, when hook is given, its Attachment. */
function hooked(name: string, object: string, program: string, version: number, hook?: string, extra = ""): string {
  const prog = `${HDR}kind: Program\nmetadata: { name: ${name} }\nspec: { object: objs/${object}, program: ${program}, globals: { version: ${version} }, maps: { hook_counts: { pin: true } }${extra} }\n`;
  return hook ? `${prog}---\n${HDR}kind: Attachment\nmetadata: { name: ${name} }\nspec: { program: ${name}, hook: ${hook} }\n` : prog;
}

/** A manifest that keeps the repository non-empty once the hook's are gone (pruning all needs a flag). */
const KEEP = { "keep.yaml": `${HDR}kind: Map\nmetadata: { name: keep }\nspec: { type: array, keySize: 4, valueSize: 4, maxEntries: 1 }\n` };

/** hook_counts of a Program: the count of each version (slot = version % 8). */
function counts(root: string, program: string): number[] {
  return readMap(`${layout.objectMapsDir(root, program)}/hook_counts`, (m) => Array.from({ length: 8 }, (_, k) => Number(m.lookup(Buffer.from([k, 0, 0, 0]))!.readBigUInt64LE(0))));
}

/** Reads a pinned map, and closes it whatever happens. */
function readMap<T>(pin: string, read: (m: MapHandle) => T): T {
  const m = openPinnedMap(pin);
  try {
    return read(m);
  } finally {
    m.close();
  }
}

const links = (root: string) => listPins(root).filter((p) => p.kind === "link").map((p) => p.path.slice(root.length));
const hookAction = (r: { plan: { actions: Array<{ kind: string }> } }) => r.plan.actions.find((a) => a.kind === "Attachment");

const FLOWS: Flow[] = [
  { name: "good", dport: 5000, payload: Buffer.from("legitimate") },
  { name: "death", dport: 6666, payload: Buffer.from("packet of death") },
];
type Sent = { good: number; death: number; goodIn: number; deathIn: number };
const traffic = async (lab: Lab): Promise<Sent> => {
  const r = await runTraffic(lab, { flows: FLOWS, pps: 2000, count: 400 });
  return { good: sum(r.sent, ["good"]), death: sum(r.sent, ["death"]), goodIn: sum(r.received, ["good"]), deathIn: sum(r.received, ["death"]) };
};

/** C programs of the tests' own (a uprobe target, a socket filter application), built once with clang. */
let bin: string;
beforeAll(() => {
  bin = mkdtempSync(join(tmpdir(), "bpfops-hooks-"));
  const src = new URL("../fixtures/hooks/", import.meta.url).pathname;
  execFileSync("clang", ["-O1", "-g", "-o", join(bin, "uprobe_target"), join(src, "uprobe_target.c")]);
  execFileSync("clang", ["-O1", "-o", join(bin, "socket_filter_app"), join(src, "socket_filter_app.c")]);
});
afterAll(() => rmSync(bin, { recursive: true, force: true }));

// Hooks on a namespace's traffic: each counts, a new version refuses UDP to port 6666, and pruning lets it through again.
describe("netfilter and sk_lookup", () => {
  it.for([
    // SEC("netfilter") is newer than libbpf 1.1: the type comes from the section, as newer libbpf reads it.
    { name: "netfilter (make-before-break, versions alternate between priority and priority + 1)", feature: "netfilterLink", object: "t_netfilter.o", program: "nf_udp", strategy: "make-before-break", hook: (lab: Lab) => `{ type: netfilter, netns: ${lab.dst.netns}, family: ipv4, hook: input, priority: -100 }`, counted: (t: Sent) => t.good + t.death, link: (lab: Lab) => `netfilter@${lab.dst.netns}@ipv4-input@-100` },
    // sk_lookup counts the lookups for port 5000 only.
    { name: "sk_lookup (link update)", feature: null, object: "t_sk_lookup.o", program: "lookup_udp", strategy: "link-update", hook: (lab: Lab) => `{ type: sk_lookup, netns: ${lab.dst.netns} }`, counted: (t: Sent) => t.good, link: (lab: Lab) => `sk_lookup@${lab.dst.netns}` },
  ] as const)("$name", async (c, ctx) => {
    if (c.feature) needs(ctx, c.feature);
    const lab = tempLab();
    const root = tempPinRoot();
    const doc = (version: number) => ({ ...KEEP, "h.yaml": hooked("hooked", c.object, c.program, version, c.hook(lab)) });
    const dir = tempRepo(doc(1));
    await applyRepo(dir, root);
    let t = await traffic(lab);
    expect([t.goodIn, t.deathIn]).toEqual([t.good, t.death]);
    expect(counts(root, "hooked")[1]).toBe(c.counted(t));
    writeRepo(dir, doc(2));
    expect(hookAction(await applyRepo(dir, root))).toMatchObject({ op: "swap", strategy: c.strategy });
    t = await traffic(lab);
    expect([t.goodIn, t.deathIn]).toEqual([t.good, 0]);
    expect(counts(root, "hooked")[2]).toBe(c.counted(t));
    expect(links(root)).toEqual([`/links/hooked/${c.link(lab)}`]);
    writeRepo(dir, KEEP);
    await applyRepo(dir, root);
    expect(links(root)).toEqual([]);
    t = await traffic(lab);
    expect(t.deathIn).toBe(t.death);
  });
});

describe("flow_dissector", () => {
  it("a flow dissector on a namespace dissects what RPS hashes there; a new version is a link update; pruned", async () => {
    const lab = tempLab();
    const root = tempPinRoot();
    // Receive packet steering hashes each packet dst0 receives, which runs the namespace's flow
    // dissector. (`ip netns exec` mounts the namespace's own /sys for the write.)
    execFileSync("ip", ["netns", "exec", lab.dst.netns, "sh", "-c", `echo 1 > /sys/class/net/${lab.dst.ifname}/queues/rx-0/rps_cpus`]);
    const hook = `{ type: flow_dissector, netns: ${lab.dst.netns} }`;
    const dir = tempRepo({ ...KEEP, "d.yaml": hooked("dissect", "t_flow_dissector.o", "dissect", 1, hook) });
    await applyRepo(dir, root);
    let t = await traffic(lab);
    expect([t.goodIn, t.deathIn]).toEqual([t.good, t.death]);
    expect(counts(root, "dissect")[1]).toBeGreaterThanOrEqual(t.good + t.death);
    writeRepo(dir, { ...KEEP, "d.yaml": hooked("dissect", "t_flow_dissector.o", "dissect", 2, hook) });
    expect(hookAction(await applyRepo(dir, root))).toMatchObject({ op: "swap", strategy: "link-update" });
    const before = counts(root, "dissect")[1]!;
    t = await traffic(lab);
    expect(counts(root, "dissect")[1]).toBe(before);
    expect(counts(root, "dissect")[2]).toBeGreaterThanOrEqual(t.good + t.death);
    writeRepo(dir, KEEP);
    await applyRepo(dir, root);
    expect(links(root)).toEqual([]);
  });
});

describe("cgroup sockopt", () => {
  it("a cgroup setsockopt program sees its cgroup's SO_RCVBUF changes, a new version refuses them (link update), pruned", async (ctx) => {
    needs(ctx, "cgroupLinkUpdate");
    const root = tempPinRoot();
    const cg = tempCgroup();
    const hook = `{ type: cgroup, path: ${cg}, attachType: cgroup_setsockopt }`;
    /** Sets SO_RCVBUF on a UDP socket from a process in the cgroup (or out of it): "ok" or the error code. */
    const setRcvbuf = (inCgroup = true) =>
      execFileSync("sh", ["-c", `${inCgroup ? `echo $$ > ${cg}/cgroup.procs && ` : ""}exec "$0" -e "$1"`, process.execPath, `const s = require("dgram").createSocket("udp4"); s.bind(0, () => { try { s.setRecvBufferSize(65536); console.log("ok"); } catch (e) { console.log(e.info?.code ?? e.code); } s.close(); });`], { encoding: "utf8" }).trim();
    const dir = tempRepo({ ...KEEP, "o.yaml": hooked("rcvbuf", "t_cgroup_sockopt.o", "rcvbuf_guard", 1, hook) });
    await applyRepo(dir, root);
    expect(setRcvbuf()).toBe("ok");
    expect(counts(root, "rcvbuf")[1]).toBe(1);
    writeRepo(dir, { ...KEEP, "o.yaml": hooked("rcvbuf", "t_cgroup_sockopt.o", "rcvbuf_guard", 2, hook) });
    expect(hookAction(await applyRepo(dir, root))).toMatchObject({ op: "swap", strategy: "link-update" });
    expect(setRcvbuf()).toBe("EPERM");
    expect(setRcvbuf(false)).toBe("ok");
    expect(counts(root, "rcvbuf").slice(1, 3)).toEqual([1, 1]);
    writeRepo(dir, KEEP);
    await applyRepo(dir, root);
    expect(setRcvbuf()).toBe("ok");
  });
});

describe("perf_event", () => {
  it("a perf_event program samples cpu-clock on every online CPU (a link each), a new version is attached make-before-break, pruned", async () => {
    const root = tempPinRoot();
    const hook = "{ type: perf_event, event: cpu-clock, frequency: 1000 }";
    const dir = tempRepo({ ...KEEP, "p.yaml": hooked("sampler", "t_perf_event.o", "sample", 1, hook) });
    await applyRepo(dir, root);
    // One link per online CPU ("0-1,3" in sysfs).
    const online = readFileSync("/sys/devices/system/cpu/online", "utf8").trim().split(",").flatMap((r) => {
      const [a, b = a] = r.split("-").map(Number) as [number, number?];
      return Array.from({ length: b! - a + 1 }, (_, i) => a + i);
    });
    expect(links(root)).toEqual(online.map((c) => `/links/sampler/perf_event@cpu-clock@1000@cpu${c}`).sort());
    await until("samples of version 1", () => counts(root, "sampler")[1]! > 50);
    writeRepo(dir, { ...KEEP, "p.yaml": hooked("sampler", "t_perf_event.o", "sample", 2, hook) });
    expect(hookAction(await applyRepo(dir, root))).toMatchObject({ op: "swap", strategy: "make-before-break" });
    const v1 = counts(root, "sampler")[1]!;
    await until("samples of version 2", () => counts(root, "sampler")[2]! > 50);
    expect(counts(root, "sampler")[1]).toBe(v1); // version 1 sampled no more once its links went
    writeRepo(dir, KEEP);
    await applyRepo(dir, root);
    expect(links(root)).toEqual([]);
  });
});

describe("uprobe", () => {
  it("a uprobe on a function of our own binary counts its calls, by symbol; a new version is attached make-before-break; a uretprobe counts returns; pruned", async (ctx) => {
    needs(ctx, "uprobe");
    const root = tempPinRoot();
    const target = join(bin, "uprobe_target");
    const run = (n: number) => execFileSync(target, [String(n)]);
    const hook = (type = "uprobe") => `{ type: ${type}, binary: ${target}, symbol: bpfops_probe_target }`;
    const dir = tempRepo({ ...KEEP, "u.yaml": hooked("probe", "t_uprobe.o", "count_calls", 1, hook()) });
    await applyRepo(dir, root);
    run(300);
    expect(counts(root, "probe")[1]).toBe(300);
    writeRepo(dir, { ...KEEP, "u.yaml": hooked("probe", "t_uprobe.o", "count_calls", 2, hook()) });
    expect(hookAction(await applyRepo(dir, root))).toMatchObject({ op: "swap", strategy: "make-before-break" });
    run(200);
    expect(counts(root, "probe").slice(1, 3)).toEqual([300, 200]);
    // The same program on the function's return.
    writeRepo(dir, { ...KEEP, "u.yaml": hooked("probe", "t_uprobe.o", "count_calls", 3, hook("uretprobe")) });
    await applyRepo(dir, root);
    run(50);
    expect(counts(root, "probe").slice(1, 4)).toEqual([300, 200, 50]);
    expect(links(root)).toEqual([`/links/probe/uretprobe@${encodeURIComponent(target).replace(/\./g, "%2E")}@bpfops_probe_target+0`]);
    // A symbol the binary lacks blocks the hook with the reason, and changes nothing.
    writeRepo(dir, { ...KEEP, "u.yaml": hooked("probe", "t_uprobe.o", "count_calls", 3, hook("uretprobe").replace("bpfops_probe_target", "no_such_function")) });
    await expect(applyRepo(dir, root)).rejects.toThrow(/no function symbol no_such_function/);
    writeRepo(dir, KEEP);
    await applyRepo(dir, root);
    expect(links(root)).toEqual([]);
  });
});

describe("sk_msg and sk_skb", () => {
  /**
   * A TCP connection on loopback; the client's socket (or, with `side: "server"`, the one the
   * server accepted) goes into the sockmap at key 0.
   */
  async function connection(root: string, side: "client" | "server" = "client"): Promise<{ send(data: string): Promise<void>; received(): number; close(): void }> {
    let got = 0;
    let accepted: Socket | undefined;
    const server = createServer((s) => ((accepted = s), s.on("data", (d) => (got += d.length))));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const client: Socket = await new Promise((r) => {
      const c = createConnection((server.address() as { port: number }).port, "127.0.0.1", () => r(c));
    });
    const socket = side === "client" ? client : await until("the server to accept", () => accepted);
    const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    const m = openPinnedMap(layout.map(root, "socks"));
    try {
      m.update(Buffer.from([0, 0, 0, 0]), Buffer.from(new Uint32Array([fd]).buffer));
    } finally {
      m.close();
    }
    return {
      send: (data) => new Promise((r) => client.write(data, () => r())),
      received: () => got,
      close: () => (client.destroy(), server.close()),
    };
  }

  it("an sk_skb stream verdict on a sockmap Map counts what its sockets receive and passes it on; pruned", async (ctx) => {
    needs(ctx, "sockmapLink");
    const root = tempPinRoot();
    const map = `${HDR}kind: Map\nmetadata: { name: socks }\nspec: { type: sockmap, keySize: 4, valueSize: 4, maxEntries: 4 }\n`;
    const dir = tempRepo({ "m.yaml": map, "s.yaml": hooked("skbs", "t_sk_skb.o", "count_skb", 1, "{ type: sk_skb, map: socks, attachType: stream_verdict }") });
    await applyRepo(dir, root);
    expect(links(root)).toEqual(["/links/skbs/sk_skb_stream_verdict@socks"]);
    const c = await connection(root, "server");
    await c.send("received through a verdict");
    await until("the server to receive", () => c.received() === 26, 3000, () => `received ${c.received()}, counted ${counts(root, "skbs")[1]}`);
    expect(counts(root, "skbs")[1]).toBe(26);
    c.close();
    writeRepo(dir, { "m.yaml": map });
    await applyRepo(dir, root);
    expect(links(root)).toEqual([]);
  });

  it("an sk_msg program on a sockmap Map counts what its sockets send; a new version is a link update, for the sockets added after it; pruned", async (ctx) => {
    needs(ctx, "sockmapLink");
    const root = tempPinRoot();
    const map = `${HDR}kind: Map\nmetadata: { name: socks }\nspec: { type: sockmap, keySize: 4, valueSize: 4, maxEntries: 4 }\n`;
    const dir = tempRepo({ "m.yaml": map, "s.yaml": hooked("msgs", "t_sk_msg.o", "count_msg", 1, "{ type: sk_msg, map: socks }") });
    await applyRepo(dir, root);
    const first = await connection(root);
    await first.send("hello over a sockmap");
    await until("the server to receive", () => first.received() === 20);
    expect(counts(root, "msgs")[1]).toBe(20);
    writeRepo(dir, { "m.yaml": map, "s.yaml": hooked("msgs", "t_sk_msg.o", "count_msg", 2, "{ type: sk_msg, map: socks }") });
    expect(hookAction(await applyRepo(dir, root))).toMatchObject({ op: "swap", strategy: "link-update" });
    // A socket keeps the programs its map had when it was added; one added now runs version 2.
    const second = await connection(root);
    await second.send("twelve bytes");
    await until("the server to receive", () => second.received() === 12);
    expect(counts(root, "msgs").slice(1, 3)).toEqual([20, 12]);
    first.close();
    second.close();
    writeRepo(dir, { "m.yaml": map });
    await applyRepo(dir, root);
    expect(links(root)).toEqual([]);
  });
});

describe("socket_filter (load-only)", () => {
  it("a socket filter is loaded and pinned with no Attachment; an application attaches the pin to its socket, and a new version is what the next one gets", async () => {
    const root = tempPinRoot();
    const dir = tempRepo({ "f.yaml": hooked("keep-filter", "t_socket_filter.o", "keep_filter", 1) });
    const r = await applyRepo(dir, root);
    expect(r.plan.actions.map((a) => `${a.op} ${a.kind}/${a.name}`)).toEqual(["load Program/keep-filter"]);
    /** The current version's pin: the one pin in programs/<name>/ after a reconcile. */
    const pin = () => {
      const d = layout.programDir(root, "keep-filter");
      const [only, ...more] = readdirSync(d);
      expect(more).toEqual([]);
      return join(d, only!);
    };
    /** The application receives on a port while we send 30 "keep" and 20 other datagrams. */
    const app = async (port: number) => {
      const child = spawn(join(bin, "socket_filter_app"), [pin(), String(port)]);
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      await until("the application to attach the filter", () => out.includes("ready"));
      const s = createSocket("udp4");
      for (let i = 0; i < 50; i++) await new Promise<void>((r) => s.send(i < 30 ? "keep this" : "drop this", port, "127.0.0.1", () => r()));
      s.close();
      await new Promise((r) => child.on("exit", r));
      return Number(out.trim().split("\n").pop());
    };
    expect(await app(45123)).toBe(30);
    expect(counts(root, "keep-filter")[1]).toBe(50);
    writeRepo(dir, { "f.yaml": hooked("keep-filter", "t_socket_filter.o", "keep_filter", 2) });
    await applyRepo(dir, root);
    expect(await app(45124)).toBe(30);
    expect(counts(root, "keep-filter").slice(1, 3)).toEqual([50, 50]);
  });
});

describe("XDP programs sharing an interface", () => {
  /** "filter" (drops UDP to 6666) and "counter" on dst0; `order` is the filter's order field. */
  const files = (lab: Lab, order: string, filterVersion = 1, counterVersion = 1) => ({
    "x.yaml": `${HDR}kind: Program
metadata: { name: filter }
spec: { object: objs/t_xdp_shared.o, program: drop_6666, globals: { version: ${filterVersion} }, maps: { .bss: { pin: true } } }
---
${HDR}kind: Program
metadata: { name: counter }
spec: { object: objs/t_xdp_shared.o, program: count_all, globals: { version: ${counterVersion} }, maps: { .bss: { pin: true } } }
---
${HDR}kind: Attachment
metadata: { name: first }
spec: { program: filter, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] }, order: ${order} }
---
${HDR}kind: Attachment
metadata: { name: second }
spec: { program: counter, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }
`,
  });
  /** What a program's .bss counted: the filter's packets of a version, or the counter's. */
  const bss = (root: string, program: string, slot: number) => readMap(`${layout.objectMapsDir(root, program)}/bss`, (m) => Number(m.lookup(Buffer.alloc(4))!.readBigUInt64LE(slot * 8)));

  it("two ordered XDP Attachments run through bpfops's dispatcher in their order, each swapped on its own under traffic with nothing lost", async (ctx) => {
    needs(ctx, "xdpLink");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(files(lab, "{ before: second }"));
    const r1 = await applyRepo(dir, root);
    expect(r1.plan.actions.filter((a) => a.kind === "Chain").map((a) => `${a.op} ${a.name}`)).toEqual(["create bpfops-xdp-first", "attach bpfops-xdp-first"]);
    expect(r1.plan.actions.filter((a) => a.kind === "Map").map((a) => a.name)).toEqual([expect.stringMatching(/^bpfops-xdp-first-[0-9a-f]{8}$/)]);
    let t = await traffic(lab);
    expect([t.goodIn, t.deathIn]).toEqual([t.good, 0]);
    // The filter saw everything; the counter, after it, only what the filter passed.
    expect([bss(root, "filter", 1), bss(root, "counter", 5)]).toEqual([t.good + t.death, t.good]);

    // A new filter under traffic: one slot update; the counter is untouched.
    writeRepo(dir, files(lab, "{ before: second }", 2));
    let upgrade: Awaited<ReturnType<typeof applyRepo>> | undefined;
    const flows = FLOWS;
    const r = await runTraffic(lab, { flows, pps: 20_000, count: 20_000, during: async () => void (upgrade = await applyRepo(dir, root)) });
    expect(upgrade!.plan.actions.filter((a) => a.op !== "unchanged").map((a) => `${a.op} ${a.kind}/${a.name}${"strategy" in a && a.strategy ? ` ${a.strategy}` : ""}`)).toEqual(["load Program/filter", "swap Chain/bpfops-xdp-first chain-slot", "prune Program/filter"]);
    expect(sum(r.received, ["good"])).toBe(sum(r.sent, ["good"]));
    expect(sum(r.received, ["death"])).toBe(0);
    expect(bss(root, "filter", 1) > 0 && bss(root, "filter", 2) > 0).toBe(true); // both versions ran

    // Then a new counter, on its own: one slot update, the filter untouched, nothing lost.
    writeRepo(dir, files(lab, "{ before: second }", 2, 2));
    const r2 = await runTraffic(lab, { flows, pps: 20_000, count: 20_000, during: async () => void (upgrade = await applyRepo(dir, root)) });
    expect(upgrade!.plan.actions.filter((a) => a.op !== "unchanged").map((a) => `${a.op} ${a.kind}/${a.name}${"strategy" in a && a.strategy ? ` ${a.strategy}` : ""}`)).toEqual(["load Program/counter", "swap Chain/bpfops-xdp-first chain-slot", "prune Program/counter"]);
    expect(sum(r2.received, ["good"])).toBe(sum(r2.sent, ["good"]));
    expect(sum(r2.received, ["death"])).toBe(0);
    expect(bss(root, "counter", 6)).toBeGreaterThan(0);

    // The other order, under traffic: a new prog-array filled beside the old one and one dispatcher
    // update, so no packet meets half of each order (none lost, no packet of death through).
    writeRepo(dir, files(lab, "{ after: second }", 2, 2));
    const r3 = await runTraffic(lab, { flows, pps: 20_000, count: 20_000, during: async () => void (upgrade = await applyRepo(dir, root)) });
    expect(upgrade!.plan.actions.filter((a) => a.kind === "Chain").map((a) => `${a.op} ${a.name}${"strategy" in a && a.strategy ? ` ${a.strategy}` : ""}`)).toEqual(["create bpfops-xdp-first chain-rebuild", "swap bpfops-xdp-first link-update"]);
    expect(sum(r3.received, ["good"])).toBe(sum(r3.sent, ["good"]));
    expect(sum(r3.received, ["death"])).toBe(0);
    // The counter now runs first, so it sees the packets of death too.
    const before = bss(root, "counter", 6);
    t = await traffic(lab);
    expect([t.goodIn, t.deathIn]).toEqual([t.good, 0]);
    expect(bss(root, "counter", 6) - before).toBe(t.good + t.death);

    writeRepo(dir, KEEP);
    await applyRepo(dir, root);
    expect(listPins(root).filter((p) => p.kind === "link")).toEqual([]);
    t = await traffic(lab);
    expect(t.deathIn).toBe(t.death);
  });
});

describe("tcx order", () => {
  /** Programs "one" (position_id oneId) and "two" (2) on dst0 ingress; `order` is one's order field. */
  const files = (lab: Lab, order: string, oneId = 1) => ({
    "order.yaml": `${HDR}kind: Map
metadata: { name: order-seen }
spec: { type: array, keySize: 4, valueSize: 8, maxEntries: 16 }
---
${HDR}kind: Program
metadata: { name: one }
spec: { object: objs/t_tcx_order.o, program: tcx_order, globals: { position_id: ${oneId} }, maps: { order_seen: { bind: order-seen } } }
---
${HDR}kind: Program
metadata: { name: two }
spec: { object: objs/t_tcx_order.o, program: tcx_order, globals: { position_id: 2 }, maps: { order_seen: { bind: order-seen } } }
---
${HDR}kind: Attachment
metadata: { name: first }
spec: { program: one, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress }, order: ${order} }
---
${HDR}kind: Attachment
metadata: { name: second }
spec: { program: two, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }
`,
  });
  /** [id 1 ran first, id 1 ran after another, id 2 first, id 2 after, id 3 first, id 3 after] */
  const seen = (root: string) => readMap(layout.map(root, "order-seen"), (m) => [2, 3, 4, 5, 6, 7].map((k) => Number(m.lookup(Buffer.from([k, 0, 0, 0]))!.readBigUInt64LE(0))));
  const delta = (a: number[], b: number[]) => b.map((x, i) => x - a[i]!);
  const send = async (lab: Lab) => sum((await runTraffic(lab, { flows: [{ name: "udp", dport: 5000, payload: Buffer.from("order") }], pps: 2000, count: 400 })).received);

  it("places an Attachment before or after another on the same tcx hook, and moves it when the order changes", async (ctx) => {
    needs(ctx, "tcx");
    const lab = tempLab();
    const root = tempPinRoot();
    // "first" sorts before "second" by name: placing it before "second" needs "second" attached first.
    const dir = tempRepo(files(lab, "{ before: second }"));
    const r1 = await applyRepo(dir, root);
    expect(r1.plan.actions.filter((a) => a.kind === "Attachment").map((a) => [a.name, a.op])).toEqual([["second", "attach"], ["first", "attach"]]);
    let before = seen(root);
    let got = await send(lab);
    expect(got).toBeGreaterThan(0);
    expect(delta(before, seen(root))).toEqual([got, 0, 0, got, 0, 0]);
    const progs = () => queryTcxHook({ ifname: "dst0", netns: lab.dst.netns, direction: "ingress" }).progIds.length;
    expect(progs()).toBe(2);

    // The order turns round, the program the same: its link is made again after "second".
    writeRepo(dir, files(lab, "{ after: second }"));
    const r2 = await applyRepo(dir, root);
    expect(r2.plan.actions.find((a) => a.name === "first" && a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "re-place", reason: expect.stringMatching(/runs before Attachment\/second/) });
    before = seen(root);
    got = await send(lab);
    expect(delta(before, seen(root))).toEqual([0, got, got, 0, 0, 0]);
    expect(progs()).toBe(2);
    // As it is: nothing to do.
    expect((await applyRepo(dir, root)).plan.changes).toBe(false);

    // Back before "second" with a new version: the new one goes in its place before the old link goes.
    writeRepo(dir, files(lab, "{ before: second }", 3));
    const r3 = await applyRepo(dir, root);
    expect(r3.plan.actions.find((a) => a.name === "first" && a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "make-before-break" });
    before = seen(root);
    got = await send(lab);
    expect(delta(before, seen(root))).toEqual([0, 0, 0, got, got, 0]);
    expect(progs()).toBe(2);
    // A new version in the right place is a link update, which keeps the place.
    writeRepo(dir, files(lab, "{ before: second }", 1));
    expect((await applyRepo(dir, root)).plan.actions.find((a) => a.name === "first" && a.kind === "Attachment")).toMatchObject({ op: "swap", strategy: "link-update" });
    before = seen(root);
    got = await send(lab);
    expect(delta(before, seen(root))).toEqual([got, 0, 0, got, 0, 0]);

    // Pruned: the Attachments (and programs) go; the map stays named.
    writeRepo(dir, { "order.yaml": files(lab, "")["order.yaml"].split("---")[0]! });
    await applyRepo(dir, root);
    expect(progs()).toBe(0);
  });
});
