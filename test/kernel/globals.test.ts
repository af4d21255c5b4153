// Globals as manifests set them: a struct with a string in .data and integers in .bss, encoded by
// the object's BTF, decide what an XDP program drops (real traffic); a pinned .bss is read back
// with `bpfops map dump`, decoded by its BTF; bad values are refused naming the field.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { runTraffic } from "../../reconciler/lab/traffic.ts";
import { needs, tempLab, tempPinRoot } from "./harness.ts";
import { applyRepo, HDR, planRepo, tempRepo } from "./repos.ts";
import { ManifestInvalidError } from "../../reconciler/core/manifest-issues.ts";

const program = (globals: string, netns?: string) =>
  `${HDR}kind: Program\nmetadata: { name: g }\nspec:\n  object: objs/t_globals.o\n  program: globals_filter\n  globals: ${globals}\n  maps: { .bss: { pin: true } }\n` +
  (netns ? `---\n${HDR}kind: Attachment\nmetadata: { name: g }\nspec: { program: g, hook: { type: xdp, netns: ${netns}, interfaces: [dst0] } }\n` : "");

describe("globals in .data and .bss", () => {
  it("a struct in .data and an integer in .bss, set by the manifest, decide what is dropped; the pinned .bss reads back decoded", async (ctx) => {
    needs(ctx, "xdpLinkUpdate");
    const lab = tempLab();
    const root = tempPinRoot();
    await applyRepo(tempRepo({ "g.yaml": program("{ drop_port: 7777, limits: { max_port: 9000, label: edge } }", lab.dst.netns) }), root);
    const flows = [
      { name: "port", dport: 7777, payload: Buffer.from("drop_port") },
      { name: "high", dport: 9500, payload: Buffer.from("above max_port") },
      { name: "ok", dport: 80, payload: Buffer.from("kept") },
    ];
    const t = await runTraffic(lab, { flows, pps: 5000, count: 1500 });
    expect([t.received.port, t.received.high, t.received.ok]).toEqual([0, 0, t.sent.ok]);
    const r = spawnSync(process.execPath, ["bin/bpfops.cjs", "map", "dump", "g/bss", "--bpffs", root, "--output", "json"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const sent = t.sent.port! + t.sent.high! + t.sent.ok!;
    expect((JSON.parse(r.stdout) as { entries: unknown[] }).entries).toEqual([{ key: 0, value: { seen: sent, drop_port: 7777 } }]);
  });

  it.each([
    ["a global no section has", "{ nope: 1 }", /spec\.globals\.nope: no global "nope" in \.rodata, \.data or \.bss/],
    ["a string too long for its char array", "{ limits: { max_port: 1, label: much-too-long } }", /spec\.globals\.limits: .*globals\.limits\.label.*holds 8/],
    ["a number that does not fit", "{ drop_port: 5000000000 }", /spec\.globals\.drop_port: .*does not fit the variable \(4 bytes\)/],
    ["a field the struct does not have", "{ limits: { max_ports: 1 } }", /spec\.globals\.limits: .*max_ports/],
  ])("refuses %s, naming the field", async (_, globals, message) => {
    const err = await planRepo(tempRepo({ "g.yaml": program(globals) }), tempPinRoot()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestInvalidError);
    expect((err as ManifestInvalidError).issues.map((i) => `${i.field}: ${i.message}`).join("\n")).toMatch(message);
  });
});
