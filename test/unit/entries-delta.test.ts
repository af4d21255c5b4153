// A revision that changes only Map entries, as entries: when the controller may send a delta
// instead of a whole bundle (a table of revision pairs), and an agent's build with the delta in.
import { describe, expect, it } from "vitest";
import { entriesDelta, withEntries, MAX_DELTA_BYTES, type BuiltRevision } from "../../reconciler/fleet/entries-delta.ts";
import { parseManifestFile } from "../../reconciler/core/parse-manifests.ts";
import type { Build } from "../../reconciler/agent/build.ts";
import type { DesiredMap } from "../../reconciler/core/desired.ts";

const HDR = "apiVersion: bpfops.dev/v1alpha1\n";
interface Rev {
  entries?: string[];
  maxEntries?: number;
  version?: number;
  object?: string;
  extra?: boolean;
  /** the Rollout's bake */
  bake?: string;
  /** what the build encoded (an entries file's rows, say), when not the manifest's */
  encoded?: string[];
}
const entry = (i: number, v: string) => ({ key: i.toString(16).padStart(8, "0"), value: v });
function built(r: Rev, digest = "sha256:a"): BuiltRevision {
  const entries = r.entries ?? ["01"];
  const yaml =
    `${HDR}kind: Map\nmetadata: { name: rules }\nspec:\n  type: array\n  keySize: 4\n  valueSize: 1\n  maxEntries: ${r.maxEntries ?? 8}\n` +
    (entries.length ? `  entries:\n${entries.map((v, i) => `    - { key: ${i}, value: "hex:${v}" }`).join("\n")}\n` : "") +
    `---\n${HDR}kind: Program\nmetadata: { name: filter }\nspec: { object: f.o, program: f, globals: { v: ${r.version ?? 1} }, maps: { rules: { bind: rules } } }\n` +
    (r.extra ? `---\n${HDR}kind: Map\nmetadata: { name: more }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 4 }\n` : "") +
    `---\n${HDR}kind: Rollout\nmetadata: { name: fleet }\nspec: { rings: [{ name: all }], bake: ${r.bake ?? "1s"} }\n`;
  const { manifests, issues } = parseManifestFile("fleet/filter.yaml", Buffer.from(yaml));
  expect(issues).toEqual([]);
  return { digest, manifests, objects: new Map([["fleet/f.o", Buffer.from(r.object ?? "elf")]]), mapEntries: new Map([["rules", (r.encoded ?? entries).map((v, i) => entry(i, v))]]) };
}

describe("entriesDelta", () => {
  it.each<[string, Rev, Rev, Record<string, string[]> | undefined]>([
    ["a rule added: the Map's entries", { entries: ["01"] }, { entries: ["01", "02"] }, { rules: ["01", "02"] }],
    ["a rule changed", { entries: ["01", "02"] }, { entries: ["01", "03"] }, { rules: ["01", "03"] }],
    ["every rule removed: the Map holds none", { entries: ["01"] }, { entries: [] }, { rules: [] }],
    ["an entries file changed (the manifests did not)", { encoded: ["01"] }, { encoded: ["05"] }, { rules: ["05"] }],
    ["a rule added and the Rollout changed (hosts do not read it)", { entries: ["01"] }, { entries: ["01", "02"], bake: "1h" }, { rules: ["01", "02"] }],
    ["only the Rollout changed", {}, { bake: "1h" }, undefined],
    ["nothing changed", {}, {}, undefined],
    ["a program's global changed", {}, { version: 2 }, undefined],
    ["an object's bytes changed", {}, { object: "elf2" }, undefined],
    ["entries and the Map's size changed", {}, { entries: ["01", "02"], maxEntries: 16 }, undefined],
    ["a manifest added", {}, { entries: ["01", "02"], extra: true }, undefined],
  ])("%s", (_, a, b, want) => {
    const d = entriesDelta(built(a, "sha256:a"), built(b, "sha256:b"));
    if (!want) return expect(d).toBeUndefined();
    expect(d).toEqual({ from: "sha256:a", maps: Object.fromEntries(Object.entries(want).map(([m, vs]) => [m, vs.map((v, i) => entry(i, v))])) });
  });

  it("entries too many to write into every host's target go as a bundle", () => {
    const a = built({});
    const b = built({});
    const big = Array.from({ length: Math.ceil(MAX_DELTA_BYTES / 16) + 1 }, (_, i) => entry(i, "00000000"));
    expect(entriesDelta(a, { ...b, mapEntries: new Map([["rules", big]]) })).toBeUndefined();
    expect(entriesDelta(a, { ...b, mapEntries: new Map([["rules", big.slice(0, 10)]]) })).toBeDefined();
  });
});

describe("withEntries", () => {
  const map = (name: string, values: string[]): DesiredMap => ({ name, source: "f.yaml", def: { type: "array", keySize: 4, valueSize: 1, maxEntries: 8, flags: 0 }, onChange: "migrate", merge: "latest", entries: values.map((v, i) => entry(i, v)), overwriteEntries: false, entryPolicy: "exact", datapathWrites: "none", prune: true });
  const build = { desired: { maps: [map("rules", ["01"]), map("other", ["07"])], programs: [], attachments: [], chains: [] }, manifests: [], objects: new Map(), revision: "main@sha1:old" } as unknown as Build;

  it("puts the delta's entries into the Maps this host runs, and names the new revision", () => {
    const b = withEntries(build, { from: "sha256:a", maps: { rules: [entry(0, "01"), entry(1, "02")], notHere: [entry(0, "09")] } }, "main@sha1:new");
    expect(b.revision).toBe("main@sha1:new");
    expect(b.desired.maps.map((m) => [m.name, m.entries.map((e) => e.value)])).toEqual([["rules", ["01", "02"]], ["other", ["07"]]]);
    // the applied build is not changed under the agent
    expect(build.desired.maps[0]!.entries).toHaveLength(1);
  });
});
