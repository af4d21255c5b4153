// Map contents as declared state, on the real kernel: an allow policy under entryPolicy exact,
// where removing a grant from git closes it at the next reconcile while the flows that keep their
// grants lose no packet; batch writes and removals of large entry sets.
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openPinnedMap } from "../../reconciler/kernel/pins.ts";
import { layout } from "../../reconciler/core/layout.ts";
import type { Lab } from "../../reconciler/lab/netlab.ts";
import { runTraffic } from "../../reconciler/lab/traffic.ts";
import { closeAtEnd, needs, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo, HDR, planRepo, tempRepo, writeRepo } from "./repos.ts";

/** The allow_policy key: saddr (network order), dport (network order), protocol, a pad byte. */
function grantKey(saddr: string, dport: number, proto = 17): string {
  const k = Buffer.alloc(8);
  saddr.split(".").forEach((o, i) => (k[i] = Number(o)));
  k.writeUInt16BE(dport, 4);
  k[6] = proto;
  return k.toString("hex");
}

function policy(lab: Lab, grants: Array<[string, number, number?]>): Record<string, string> {
  const entries = grants.map(([a, p, v]) => `    - { key: "hex:${grantKey(a, p)}", value: ${v ?? 1} }`).join("\n");
  return {
    "m.yaml": `${HDR}kind: Map\nmetadata: { name: allow }\nspec:\n  type: hash\n  keySize: 8\n  valueSize: 4\n  maxEntries: 1024\n  entryPolicy: exact\n  datapathWrites: none\n  entries:${grants.length ? `\n${entries}` : " []"}\n---
${HDR}kind: Program\nmetadata: { name: policy }\nspec: { object: objs/allow_policy.o, program: allow_policy, maps: { allow: { bind: allow } } }\n---
${HDR}kind: Attachment\nmetadata: { name: policy }\nspec: { program: policy, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n`,
  };
}

describe("entryPolicy exact", () => {
  it("an allow policy: removing a grant closes it at the next reconcile, under traffic, and the other grants lose no packet", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const src = lab.src.addr;
    const dir = tempRepo(policy(lab, [[src, 80], [src, 53]]));
    await applyRepo(dir, root);
    const flows = [
      { name: "web", dport: 80, payload: Buffer.from("GET /") },
      { name: "dns", dport: 53, payload: Buffer.from("query") },
    ];

    // The grant for dns leaves git and web's grant gets another value; the plan names both.
    writeRepo(dir, policy(lab, [[src, 80, 2]]));
    const plan = await planRepo(dir, root);
    const action = plan.actions.find((a) => a.kind === "Map" && a.name === "allow")!;
    expect(action).toMatchObject({
      op: "set-entries",
      entryChanges: { added: 0, changed: 1, removed: 1, list: [{ change: "~", key: grantKey(src, 80), from: "01000000", value: "02000000" }, { change: "-", key: grantKey(src, 53) }] },
    });

    const during = await runTraffic(lab, {
      flows,
      pps: 40_000,
      count: 80_000,
      during: async () => {
        await new Promise((r) => setTimeout(r, 400));
        await applyRepo(dir, root);
      },
    });
    expect(during.socketDrops).toBe(0);
    // web kept its grant the whole time: every packet arrived
    expect(during.received.web).toBe(during.sent.web);
    // dns was allowed before the reconcile, and not after
    expect(during.received.dns).toBeGreaterThan(0);
    expect(during.received.dns).toBeLessThan(during.sent.dns!);

    const after = await runTraffic(lab, { flows, pps: 20_000, count: 10_000 });
    expect(after.received.web).toBe(after.sent.web);
    expect(after.received.dns).toBe(0);
    const allow = closeAtEnd(openPinnedMap(layout.map(root, "allow")));
    expect(allow.entries().map((e) => [e.key.toString("hex"), e.value.toString("hex")])).toEqual([[grantKey(src, 80), "02000000"]]);
    expect((await planRepo(dir, root)).changes).toBe(false);
  });

  it("an entry someone added by hand is removed, and one they changed is put back", async (ctx) => {
    needs(ctx);
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(policy(lab, [[lab.src.addr, 80]]));
    await applyRepo(dir, root);
    const allow = closeAtEnd(openPinnedMap(layout.map(root, "allow")));
    allow.update(Buffer.from(grantKey("10.0.0.9", 22), "hex"), Buffer.from("01000000", "hex"));
    allow.update(Buffer.from(grantKey(lab.src.addr, 80), "hex"), Buffer.from("07000000", "hex"));
    const plan = await planRepo(dir, root);
    expect(plan.actions.find((a) => a.name === "allow")).toMatchObject({ op: "set-entries", entryChanges: { added: 0, changed: 1, removed: 1 } });
    await applyRepo(dir, root);
    expect(allow.entries().map((e) => [e.key.toString("hex"), e.value.toString("hex")])).toEqual([[grantKey(lab.src.addr, 80), "01000000"]]);
  });
});

/** A blocklist of CIDR prefixes (typed by the object's BTF: the whole LPM key as one string). */
function blocklist(lab: Lab, prefixes: string[]): Record<string, string> {
  return {
    "m.yaml": `${HDR}kind: Map\nmetadata: { name: blocklist }\nspec:\n  type: lpm_trie\n  keySize: 8\n  valueSize: 4\n  maxEntries: 131072\n  flags: 1\n  entryPolicy: exact\n  datapathWrites: none\n  entries:\n${prefixes.map((p) => `    - { key: ${p}, value: 1 }`).join("\n")}\n---
${HDR}kind: Program\nmetadata: { name: blocklist }\nspec: { object: objs/blocklist.o, program: ddos_blocklist, maps: { blocklist: { bind: blocklist }, drops: { pin: true } } }\n---
${HDR}kind: Attachment\nmetadata: { name: blocklist }\nspec: { program: blocklist, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n`,
  };
}

const bpfops = (args: string[]) => spawnSync(process.execPath, ["bin/bpfops.cjs", ...args], { encoding: "utf8" });

describe("typed entries", () => {
  it("a blocklist LPM trie declared with CIDR strings: one commit adds a prefix and removes another, and traffic proves both", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const [a, b] = lab.src.extraAddrs as [string, string];
    const dir = tempRepo(blocklist(lab, [`${a}/32`, "192.0.2.0/24"]));
    await applyRepo(dir, root);
    const flows = [
      { name: "good", dport: 7000, payload: Buffer.from("ok") },
      { name: "a", dport: 7001, payload: Buffer.from("from a"), source: a },
      { name: "b", dport: 7002, payload: Buffer.from("from b"), source: b },
    ];
    const before = await runTraffic(lab, { flows, pps: 20_000, count: 9_000 });
    expect([before.received.good, before.received.a, before.received.b]).toEqual([before.sent.good, 0, before.sent.b]);

    writeRepo(dir, blocklist(lab, [`${b}/32`, "192.0.2.0/24"]));
    const plan = await planRepo(dir, root);
    expect(plan.actions.find((x) => x.name === "blocklist" && x.kind === "Map")).toMatchObject({
      op: "set-entries",
      entryChanges: { added: 1, removed: 1, list: [{ change: "+", decoded: { key: { addr: `${b}/32` }, value: 1 } }, { change: "-", decoded: { key: { addr: `${a}/32` } } }] },
    });
    await applyRepo(dir, root);
    const after = await runTraffic(lab, { flows, pps: 20_000, count: 9_000 });
    expect([after.received.good, after.received.a, after.received.b]).toEqual([after.sent.good, after.sent.a, 0]);

    // Read back by its BTF: the map bpfops created carries its types.
    const dump = bpfops(["map", "dump", "blocklist", "--bpffs", root, "--output", "json"]);
    expect(dump.status, dump.stderr).toBe(0);
    expect(JSON.parse(dump.stdout)).toMatchObject({ type: "lpm_trie", keyType: "struct prefix_v4", entries: expect.arrayContaining([{ key: { addr: `${b}/32` }, value: 1 }, { key: { addr: "192.0.2.0/24" }, value: 1 }]) });
    const get = bpfops(["map", "get", "blocklist", `${b}/32`, "--bpffs", root]);
    expect(get.stdout.trim()).toBe("1");
    const drops = bpfops(["map", "dump", "blocklist/drops", "--bpffs", root, "--sum", "--output", "json"]);
    expect(drops.status, drops.stderr).toBe(0);
    expect((JSON.parse(drops.stdout) as { entries: Array<{ value: number }> }).entries[0]!.value).toBe(before.sent.a! + after.sent.b!);
  });

  it("an entry that does not fit its field is an error naming the file, line and field path, and nothing changes", async (ctx) => {
    needs(ctx);
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(policy(lab, [[lab.src.addr, 80]]));
    writeRepo(dir, { "m.yaml": policy(lab, [[lab.src.addr, 80]])["m.yaml"]!.replace(/- \{ key: "hex:[0-9a-f]+", value: 1 \}/, "- { key: { saddr: 10.0.0.1, dport: 70000, proto: udp }, value: 1 }") });
    const r = bpfops(["reconcile", "--path", dir, "--bpffs", root]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/m\.yaml:\d+:\d+: Map\/allow spec\.entries\[0\]\.key\.dport: 70000 does not fit __be16 \[EntrySize\]/);
  });
});

describe("pinned object maps follow onChange", () => {
  /** The tcx counter with its own per-CPU counts map pinned (4 slots, or 8), on lab.dst. */
  const counter = (lab: Lab, slots: number, onChange?: string) => ({
    "m.yaml": `${HDR}kind: Program\nmetadata: { name: counter }\nspec: { object: objs/tcx_counter.o, program: tcx_counter, maps: { tcx_counts: { pin: true, maxEntries: ${slots}${onChange ? `, onChange: ${onChange}, merge: sum` : ""} } } }\n---
${HDR}kind: Attachment\nmetadata: { name: counter }\nspec: { program: counter, hook: { type: tcx, netns: ${lab.dst.netns}, interfaces: [dst0], direction: ingress } }\n`,
  });
  const counted = (root: string) => {
    const e = dump(root, "counter/tcx_counts").find((x) => x.key === 1)!.value as { packets: number };
    return e.packets;
  };

  it.for([
    ["migrate", "keeps its entries, and what is counted during the switch", (before: number, after: number, sent: number) => expect(after).toBe(before + sent)],
    ["recreate", "starts empty", (_before: number, after: number, sent: number) => expect(after).toBeLessThanOrEqual(sent)],
  ] as const)("onChange %s: a resized pinned object map %s", async ([onChange, , check], ctx) => {
    needs(ctx, "tcxLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(counter(lab, 4));
    await applyRepo(dir, root);
    const flows = [{ name: "udp", dport: 7200, payload: Buffer.from("count me") }];
    const first = await runTraffic(lab, { flows, pps: 20_000, count: 4_000 });
    const before = counted(root);
    expect(before).toBeGreaterThanOrEqual(first.sent.udp!);
    writeRepo(dir, counter(lab, 8, onChange));
    const plan = await planRepo(dir, root);
    expect(plan.actions.find((a) => a.kind === "Map" && a.name === "counter/tcx_counts")).toMatchObject({ op: onChange, from: "percpu_array 4/16 x4", to: "percpu_array 4/16 x8" });
    const during = await runTraffic(lab, { flows, pps: 50_000, count: 50_000, during: async () => void (await applyRepo(dir, root)) });
    const m = closeAtEnd(openPinnedMap(`${root}/objmaps/counter/tcx_counts`));
    expect(m.info().maxEntries).toBe(8);
    check(before, counted(root), during.sent.udp!);
    expect((await planRepo(dir, root)).changes).toBe(false);
  });
});

describe("more map types", () => {
  it("a map-in-map holds the Map its entry names; a queue holds its values in order; a per-CPU entry is every CPU's, or CPU by CPU", async (ctx) => {
    needs(ctx);
    const root = tempPinRoot();
    const dir = tempRepo({
      "m.yaml": `${HDR}kind: Map\nmetadata: { name: inner-a }\nspec: { type: array, keySize: 4, valueSize: 4, maxEntries: 2, entries: [{ key: 0, value: 7 }] }\n---
${HDR}kind: Map\nmetadata: { name: outer }\nspec: { type: hash_of_maps, keySize: 4, valueSize: 4, maxEntries: 4, innerMap: { type: array, keySize: 4, valueSize: 4, maxEntries: 2 }, entries: [{ key: 1, value: { map: inner-a } }] }\n---
${HDR}kind: Map\nmetadata: { name: jobs }\nspec: { type: queue, keySize: 0, valueSize: 4, maxEntries: 8, entries: [{ value: 10 }, { value: 20 }, { value: 30 }] }\n---
${HDR}kind: Map\nmetadata: { name: per-cpu }\nspec: { type: percpu_array, keySize: 4, valueSize: 8, maxEntries: 2, entries: [{ key: 1, value: 5 }, { key: 0, value: { perCpu: [7, 9] } }] }\n`,
    });
    await applyRepo(dir, root);
    const outer = closeAtEnd(openPinnedMap(`${root}/maps/outer`));
    const inner = closeAtEnd(openPinnedMap(`${root}/maps/inner-a`));
    expect(outer.lookup(Buffer.from("01000000", "hex"))!.readUInt32LE(0)).toBe(inner.id);
    const jobs = closeAtEnd(openPinnedMap(`${root}/maps/jobs`));
    // bpftool dequeues: the values in the order they were pushed.
    expect(jobs.lookup(Buffer.alloc(0))!.readUInt32LE(0)).toBe(10);
    const dequeue = () => (JSON.parse(execFileSync("bpftool", ["-j", "map", "dequeue", "pinned", `${root}/maps/jobs`], { encoding: "utf8" })) as { value: string[] }).value.map((x) => Number(x)).reduce((n, b, i) => n + b * 256 ** i, 0);
    expect([dequeue(), dequeue(), dequeue()]).toEqual([10, 20, 30]);
    const perCpu = closeAtEnd(openPinnedMap(`${root}/maps/per-cpu`));
    const cpus = perCpu.splitPerCpu(perCpu.lookup(Buffer.from("01000000", "hex"))!).length;
    expect(perCpu.splitPerCpu(perCpu.lookup(Buffer.from("01000000", "hex"))!).map((b) => b.readBigUInt64LE(0))).toEqual(Array(cpus).fill(5n)); // one value: every CPU's
    // a list: CPU by CPU, the CPUs not listed zero
    expect(perCpu.splitPerCpu(perCpu.lookup(Buffer.from("00000000", "hex"))!).map((b) => b.readBigUInt64LE(0))).toEqual([7n, 9n, ...Array(cpus - 2).fill(0n)]);
    // In place: a second reconcile changes nothing (the queue is not refilled, the outer map still holds inner-a).
    const again = await planRepo(dir, root);
    expect(again.actions.filter((x) => x.op !== "unchanged").map((x) => `${x.op} ${x.kind}/${x.name}: ${x.reason}`)).toEqual([]);
  });

  it("an exact change that replaces most of a large map is a new map the program switches to, under traffic", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const [a, b] = lab.src.extraAddrs as [string, string];
    // 2,000 prefixes of 198.18.0.0/15, plus the lab's first extra source; then 2,000 others plus the second.
    const prefixes = (base: number, addr: string) => [...Array.from({ length: 2000 }, (_, i) => `198.${18 + ((base + i) >> 16)}.${((base + i) >> 8) & 255}.${(base + i) & 255}/32`), `${addr}/32`];
    const dir = tempRepo(blocklist(lab, []));
    const withFile = (list: string[]) => {
      writeRepo(dir, { "m.yaml": blocklist(lab, [])["m.yaml"]!.replace(/  entries:\n/, "  entriesFile: blocked.jsonl\n") });
      writeFileSync(join(dir, "blocked.jsonl"), list.map((p) => JSON.stringify({ key: p, value: 1 })).join("\n") + "\n");
    };
    withFile(prefixes(0, a));
    await applyRepo(dir, root);
    const before = closeAtEnd(openPinnedMap(`${root}/maps/blocklist`)).id;
    withFile(prefixes(10_000, b));
    const plan = await planRepo(dir, root);
    // (the program's version is the same, bound to the new map: reloaded in place, nothing to prune)
    expect(plan.actions.filter((x) => x.op !== "unchanged").map((x) => `${x.op} ${x.kind}/${x.name}`)).toEqual(["recreate Map/blocklist", "load Program/blocklist", "swap Attachment/blocklist"]);
    const flows = [
      { name: "good", dport: 7300, payload: Buffer.from("ok") },
      { name: "a", dport: 7301, payload: Buffer.from("from a"), source: a },
    ];
    const during = await runTraffic(lab, { flows, pps: 30_000, count: 30_000, during: async () => void (await applyRepo(dir, root)) });
    expect(during.received.good).toBe(during.sent.good); // never a moment without a filter, nor a wrong one for good
    const m = closeAtEnd(openPinnedMap(`${root}/maps/blocklist`));
    expect(m.id).not.toBe(before);
    expect(m.entries().length).toBe(2001);
    const after = await runTraffic(lab, { flows: [...flows, { name: "b", dport: 7302, payload: Buffer.from("from b"), source: b }], pps: 20_000, count: 6_000 });
    expect([after.received.good, after.received.a, after.received.b]).toEqual([after.sent.good, after.sent.a, 0]);
  });
});

describe("devmap", () => {
  /** A devmap whose slot 0 names an interface of the lab's receiving namespace, by name, and the redirect program using it. */
  const redirect = (lab: Lab, target: string) => ({
    "m.yaml": `${HDR}kind: Map\nmetadata: { name: tx-ports }\nspec:\n  type: devmap\n  keySize: 4\n  valueSize: 4\n  maxEntries: 4\n  entries:\n    - { key: 0, value: { interface: ${target}, netns: ${lab.dst.netns} } }\n---
${HDR}kind: Program\nmetadata: { name: redirect }\nspec: { object: objs/t_redirect.o, program: redirect_ipv4, maps: { tx_ports: { bind: tx-ports } } }\n---
${HDR}kind: Attachment\nmetadata: { name: redirect }\nspec: { program: redirect, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n`,
  });

  it("an entry naming an interface in a named netns holds its ifindex there; one that does not exist blocks the map until it does", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    const dir = tempRepo(redirect(lab, "fwda"));
    const blocked = await planRepo(dir, root);
    expect(blocked.actions.find((a) => a.kind === "Map" && a.name === "tx-ports")).toMatchObject({ op: "blocked", reason: expect.stringContaining(`interface fwda in netns ${lab.dst.netns} does not exist`) });
    await expect(applyRepo(dir, root)).rejects.toMatchObject({ code: "Blocked" });

    // The interface appears (in that namespace only): the next reconcile resolves it there.
    execFileSync("ip", ["-n", lab.dst.netns, "link", "add", "fwda", "type", "veth", "peer", "name", "fwdb"]);
    execFileSync("ip", ["-n", lab.dst.netns, "link", "set", "fwda", "up"]);
    await applyRepo(dir, root);
    const ifindex = Number(JSON.parse(execFileSync("ip", ["-n", lab.dst.netns, "-j", "link", "show", "fwda"], { encoding: "utf8" }))[0].ifindex);
    // (A devmap takes no BTF: its entries show as bytes.)
    const le = Buffer.alloc(4);
    le.writeUInt32LE(ifindex);
    expect(dump(root, "tx-ports")).toEqual([{ key: "hex:00000000", value: `hex:${le.toString("hex")}` }]);
    expect((await planRepo(dir, root)).actions.filter((a) => a.op !== "unchanged").map((a) => `${a.op} ${a.kind}/${a.name}: ${a.reason}`)).toEqual([]);
  });
});

describe("devmap forwarding", () => {
  it("a devmap entry naming an interface in a named netns forwards traffic there: XDP redirects every packet to it", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    // fwda and its peer fwdb live in the receiving namespace only; the root namespace has its own
    // devices at the same ifindex numbers, which is what a devmap written from there would hit.
    execFileSync("ip", ["-n", lab.dst.netns, "link", "add", "fwda", "type", "veth", "peer", "name", "fwdb"]);
    for (const dev of ["fwda", "fwdb"]) execFileSync("ip", ["-n", lab.dst.netns, "link", "set", dev, "up"]);
    const dir = tempRepo({
      "m.yaml": `${HDR}kind: Map\nmetadata: { name: tx-ports }\nspec:\n  type: devmap\n  keySize: 4\n  valueSize: 4\n  maxEntries: 4\n  entries:\n    - { key: 0, value: { interface: fwda, netns: ${lab.dst.netns} } }\n---
${HDR}kind: Program\nmetadata: { name: redirect }\nspec: { object: objs/t_redirect.o, program: redirect_ipv4, maps: { tx_ports: { bind: tx-ports } } }\n---
${HDR}kind: Attachment\nmetadata: { name: redirect }\nspec: { program: redirect, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n---
${HDR}kind: Program\nmetadata: { name: arrivals }\nspec: { object: objs/t_redirect.o, program: count_arrivals, maps: { arrived: { pin: true } } }\n---
${HDR}kind: Attachment\nmetadata: { name: arrivals }\nspec: { program: arrivals, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [fwdb] } }\n`,
    });
    await applyRepo(dir, root);
    const flows = [{ name: "redirected", dport: 7400, payload: Buffer.from("to fwda") }];
    const t = await runTraffic(lab, { flows, pps: 5_000, count: 2_000 });
    const arrived = closeAtEnd(openPinnedMap(`${layout.objectMapsDir(root, "arrivals")}/arrived`));
    let n = 0n;
    for (const cpu of arrived.splitPerCpu(arrived.lookup(Buffer.alloc(4))!)) n += cpu.readBigUInt64LE(0);
    // Every packet left through fwda (and arrived at its peer); none reached dst0's stack.
    expect([t.received.redirected, Number(n)]).toEqual([0, t.sent.redirected]);
  });
});

function dump(root: string, map: string): Array<{ key: unknown; value: unknown }> {
  const r = bpfops(["map", "dump", map, "--bpffs", root, "--output", "json", "--sum"]);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { entries: Array<{ key: unknown; value: unknown }> }).entries;
}
