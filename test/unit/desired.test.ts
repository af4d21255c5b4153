// Validation and the desired state from parsed manifests and synthetic object facts: digests
// that change exactly when the loaded program would, and host selection. No kernel, no root.
import { describe, expect, it } from "vitest";
import { parseManifestFile } from "../../reconciler/core/parse-manifests.ts";
import { validateManifests, type ObjectFacts } from "../../reconciler/core/validate.ts";
import { buildDesired, checkSelection, describeProgramChange, type ProgramSpecSummary } from "../../reconciler/core/desired.ts";

const H = "apiVersion: bpfops.dev/v1alpha1\n";
const facts: Extract<ObjectFacts, { ok: true }> = {
  ok: true,
  path: "objs/f.o",
  digest: "d".repeat(64),
  summary: {
    programs: [{ name: "f", section: "xdp", type: 6, expectedAttachType: 0 }],
    maps: [{ name: "rules", type: 2, keySize: 4, valueSize: 8, maxEntries: 4, flags: 0, internal: false, pinned: true }],
    globals: [{ name: "version", offset: 0, size: 4, section: ".rodata" }],
  },
};

function desiredOf(text: string, labels: Record<string, string> = {}, objectDigest = facts.digest) {
  const { manifests, issues } = parseManifestFile("m.yaml", Buffer.from(text));
  expect(issues).toEqual([]);
  const objects = new Map(manifests.filter((m) => m.manifest.kind === "Program").map((m) => [m.id, { ...facts, digest: objectDigest } as ObjectFacts]));
  const v = validateManifests(manifests, objects);
  expect(v.issues).toEqual([]);
  return { desired: buildDesired(v.validated, objects, labels), selection: checkSelection(v.validated, labels) };
}

const prog = (extra = "", selector = "") => `${H}kind: Program\nmetadata: { name: p }\nspec:\n  object: objs/f.o\n  program: f\n${extra}${selector}`;

describe("desired programs", () => {
  const digest = (text: string, obj?: string) => desiredOf(text, {}, obj).desired.programs[0]!.digest;
  const base = digest(prog("  globals: { version: 1 }\n"));

  it.each([
    ["a global's value", prog("  globals: { version: 2 }\n"), undefined, true],
    ["the object's bytes", prog("  globals: { version: 1 }\n"), "e".repeat(64), true],
    ["the program type", prog("  globals: { version: 1 }\n  type: xdp\n  attachType: xdp\n"), undefined, true],
    ["a map's size", prog("  globals: { version: 1 }\n  maps: { rules: { maxEntries: 8 } }\n"), undefined, true],
    ["nothing but field order", `${H}kind: Program\nmetadata: { name: p }\nspec:\n  program: f\n  globals: { version: 1 }\n  object: objs/f.o\n`, undefined, false],
    ["an unrelated label", prog("  globals: { version: 1 }\n").replace("name: p }", "name: p, labels: { team: x } }"), undefined, false],
  ])("changing %s %s the digest", (_, text, obj, changes) => {
    expect(digest(text, obj) !== base).toBe(changes);
  });

  it("encodes globals at their size, little-endian", () => {
    expect(desiredOf(prog("  globals: { version: 258 }\n")).desired.programs[0]!.globals).toEqual({ version: "02010000" });
  });
});

describe("host selection", () => {
  const att = (selector = "") => `${H}kind: Attachment\nmetadata: { name: a }\nspec:\n  program: p\n  hook: { type: xdp, interfaces: [eth0] }\n${selector}`;
  const onlyEdge = "  hostSelector: { matchLabels: { role: edge } }\n";

  it.each([
    ["no selectors: everything", {}, "", "", ["p"], ["a"]],
    ["selected host", { role: "edge" }, onlyEdge, onlyEdge, ["p"], ["a"]],
    ["other host", { role: "core" }, onlyEdge, onlyEdge, [], []],
  ])("%s", (_, labels, ps, as, programs, attachments) => {
    const { desired, selection } = desiredOf(`${prog("", ps)}---\n${att(as)}`, labels);
    expect(desired.programs.map((p) => p.name)).toEqual(programs);
    expect(desired.attachments.map((a) => a.name)).toEqual(attachments);
    expect(selection).toEqual([]);
  });

  it("an attachment selected for a host whose program is not is reported where it names it", () => {
    const { selection } = desiredOf(`${prog("", onlyEdge)}---\n${att()}`, { role: "core" });
    expect(selection).toMatchObject([{ code: "NotSelected", line: 13, field: "spec.program", manifest: "Attachment/a" }]);
  });
});

describe("describeProgramChange", () => {
  const base: ProgramSpecSummary = { o: "aaaa", t: "xdp", g: { filter_version: "01000000" }, m: { pod_rules: "bind:rules" } };
  it.each<[string, Partial<ProgramSpecSummary>, string[]]>([
    ["nothing", {}, []],
    ["a global, shown as the number it is", { g: { filter_version: "02000000" } }, ["global filter_version 1 -> 2"]],
    ["a global set for the first time", { g: { filter_version: "01000000", other: "07" } }, ["global other unset -> 7"]],
    ["the object's bytes", { o: "bbbb" }, ["object aaaa -> bbbb"]],
    ["a binding", { m: { pod_rules: "bind:other" } }, ["map pod_rules bind:rules -> bind:other"]],
    ["an override removed", { m: {} }, ["map pod_rules bind:rules -> default"]],
    ["the type and attach type", { t: "sched_cls", a: "tcx_ingress" }, ["type xdp -> sched_cls", "attachType unset -> tcx_ingress"]],
  ])("%s", (_, to, want) => {
    expect(describeProgramChange(base, { ...base, ...to })).toEqual(want);
  });
});
