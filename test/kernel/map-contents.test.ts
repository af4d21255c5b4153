// Map contents as declared state, on the real kernel: an allow policy under entryPolicy exact,
// where removing a grant from git closes it at the next reconcile while the flows that keep their
// grants lose no packet; batch writes and removals of large entry sets.
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
