// Map contents as declared state, on the real kernel: an allow policy under entryPolicy exact,
// where removing a grant from git closes it at the next reconcile while the flows that keep their
// grants lose no packet; batch writes and removals of large entry sets.
import { spawnSync } from "node:child_process";
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
${HDR}kind: Program\nmetadata: { name: blocklist }\nspec: { object: objs/blocklist.o, program: blocklist_filter, maps: { blocklist: { bind: blocklist }, blocklist_drops: { pin: true } } }\n---
${HDR}kind: Attachment\nmetadata: { name: blocklist }\nspec: { program: blocklist, hook: { type: xdp, netns: ${lab.dst.netns}, interfaces: [dst0] } }\n`,
  };
}

const bpfops = (args: string[]) => spawnSync(process.execPath, ["bin/bpfops.js", ...args], { encoding: "utf8" });

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
    const drops = bpfops(["map", "dump", "blocklist/blocklist_drops", "--bpffs", root, "--sum", "--output", "json"]);
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
