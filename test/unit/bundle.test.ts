// Fleet bundles as tables: their encoding and digest, and what the controller's build found (the
// manifests parsed, the objects inspected), which a host of the same bpfops builds from instead
// of parsing and inspecting itself. No root, no etcd.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bundleDigest, decodeBundle, encodeBundle, type Bundle } from "../../reconciler/fleet/bundle.ts";
import { bundleTree } from "../../reconciler/sources/bundle-tree.ts";
import { buildRevision, readManifests } from "../../reconciler/agent/build.ts";
import { makeBundle } from "../../reconciler/fleet/make-bundle.ts";
import { directoryTree } from "../../reconciler/sources/repo-tree.ts";
import { parseManifestFile } from "../../reconciler/core/parse-manifests.ts";
import { codeIdentity } from "../../reconciler/package-root.ts";
import type { Manifest } from "../../schemas/manifest.ts";

describe("bundles", () => {
  const b = { manifestDir: "fleet", files: new Map([["fleet/a.yaml", Buffer.from("a")], ["bpf/x.bpf.c", Buffer.from([0x7f, 0x45, 0x4c, 0x46])]]), prebuilt: new Set(["bpf/x.bpf.c"]) };
  it("encode and decode give the bundle back, by its digest; the order files were added in does not matter", () => {
    const bytes = encodeBundle(b);
    const d = bundleDigest(bytes);
    const back = decodeBundle(bytes, d);
    expect([...back.files.entries()].map(([k, v]) => [k, v.toString("hex")])).toEqual([["bpf/x.bpf.c", "7f454c46"], ["fleet/a.yaml", "61"]]);
    expect([...back.prebuilt]).toEqual(["bpf/x.bpf.c"]);
    expect(back.parsed).toBeUndefined();
    const reordered = { ...b, files: new Map([...b.files.entries()].reverse()) };
    expect(bundleDigest(encodeBundle(reordered))).toBe(d);
  });
  it.each<[string, (x: Buffer) => Buffer, string]>([
    ["a changed byte", (x) => Buffer.concat([x.subarray(0, -1), Buffer.from("X")]), "BundleDigestMismatch"],
    ["a truncated bundle", (x) => x.subarray(0, -2), "BundleDigestMismatch"],
  ])("%s is refused", (_, change, code) => {
    const bytes = encodeBundle(b);
    expect(() => decodeBundle(change(bytes), bundleDigest(bytes))).toThrow(expect.objectContaining({ code }));
  });
  it("the parsed manifests are encoded and covered by the digest", () => {
    const parsed = { by: "1.0.0", files: { "fleet/a.yaml": [{ kind: "Map", metadata: { name: "m" } } as unknown as Manifest] } };
    const bytes = encodeBundle({ ...b, parsed });
    expect(decodeBundle(bytes, bundleDigest(bytes)).parsed).toEqual(parsed);
    expect(bundleDigest(bytes)).not.toBe(bundleDigest(encodeBundle(b)));
    const other = { ...parsed, files: { "fleet/a.yaml": [{ kind: "Map", metadata: { name: "n" } } as unknown as Manifest] } };
    expect(bundleDigest(encodeBundle({ ...b, parsed: other }))).not.toBe(bundleDigest(bytes));
  });
});

const root = new URL("../../manifests/", import.meta.url).pathname;
const yamlFiles = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith(".yaml") ? [join(dir, e.name)] : []));

describe("the manifests a bundle carries parsed", () => {
  it.each(yamlFiles(root).map((f) => [f.slice(root.length)]))("%s: the schema's output survives the bundle's JSON unchanged", (f) => {
    const { manifests, issues } = parseManifestFile(f, readFileSync(join(root, f)));
    expect(issues).toEqual([]);
    expect(JSON.parse(JSON.stringify(manifests.map((m) => m.manifest)))).toStrictEqual(manifests.map((m) => m.manifest));
  });

  const HDR = "apiVersion: bpfops.dev/v1alpha1\n";
  const yaml = (name: string) => `${HDR}kind: Map\nmetadata: { name: ${name} }\nspec:\n  type: hash\n  keySize: 4\n  valueSize: 4\n  maxEntries: 8\n---\n${HDR}kind: Program\nmetadata: { name: p }\nspec:\n  object: x.o\n  program: p\n`;
  const file = "fleet/a.yaml";
  const yamlManifests = (name: string) => parseManifestFile(file, Buffer.from(yaml(name))).manifests;
  // The bundle's YAML says Map "from-yaml", its parsed manifests Map "from-parsed": which one a build
  // reads shows whether the YAML was parsed.
  const bundle = (parsed?: Bundle["parsed"]): Bundle => ({ digest: "sha256:x", manifestDir: "fleet", files: new Map([[file, Buffer.from(yaml("from-yaml"))]]), prebuilt: new Set(), ...(parsed ? { parsed } : {}) });
  const byController = (by: string, files: Record<string, Manifest[]> = { [file]: yamlManifests("from-parsed").map((m) => m.manifest) }) => ({ by, files });

  it.each<[string, Bundle["parsed"] | undefined, string]>([
    ["parsed by this same bpfops: used, the YAML is not parsed", byController(codeIdentity()), "from-parsed"],
    ["parsed by another version (its schema may differ): the YAML is parsed", byController("0.0.0-other"), "from-yaml"],
    ["parsed by other sources of this version (a development tree): the YAML is parsed", byController(`${codeIdentity().split("+")[0]}+${"0".repeat(64)}`), "from-yaml"],
    ["the file not among the parsed: the YAML is parsed", byController(codeIdentity(), {}), "from-yaml"],
    ["a bundle without parsed manifests (an older controller's): the YAML is parsed", undefined, "from-yaml"],
  ])("%s", async (_, parsed, mapName) => {
    const { manifests, issues } = await readManifests(bundleTree(bundle(parsed), "r1"), "fleet");
    expect(issues).toEqual([]);
    expect(manifests.map((m) => [m.file, m.id])).toEqual([[file, `Map/${mapName}`], [file, "Program/p"]]);
    expect(manifests.map((m) => m.manifest)).toStrictEqual(yamlManifests(mapName).map((m) => m.manifest));
  });

  it.each<[string, Array<string | number>]>([
    ["a field", ["spec", "program"]],
    ["a missing field, at its parent", ["spec", "globals", "v"]],
    ["the document", []],
  ])("locating %s in a parsed manifest parses the YAML then and finds the same place", async (_, path) => {
    const same = { ...bundle(), files: new Map([[file, Buffer.from(yaml("m"))]]), parsed: byController(codeIdentity(), { [file]: yamlManifests("m").map((m) => m.manifest) }) };
    const { manifests } = await readManifests(bundleTree(same, "r1"), "fleet");
    expect(manifests[1]!.locate(path)).toEqual(yamlManifests("m")[1]!.locate(path));
    expect(manifests[1]!.locate(path).line).toBeGreaterThan(8);
  });
});

describe("the objects a bundle carries inspected", () => {
  // A repository with one prebuilt object, bundled as the controller bundles it.
  const repo = mkdtempSync(join(tmpdir(), "bpfops-unit-bundle-"));
  afterAll(() => rmSync(repo, { recursive: true, force: true }));
  const object = "bpf/tp_counter.o";
  const made = (async () => {
    mkdirSync(join(repo, "bpf"));
    mkdirSync(join(repo, "fleet"));
    copyFileSync(new URL(`../../${object}`, import.meta.url).pathname, join(repo, object));
    writeFileSync(join(repo, "fleet/p.yaml"), "apiVersion: bpfops.dev/v1alpha1\nkind: Program\nmetadata: { name: p }\nspec: { object: ../bpf/tp_counter.o, program: count_getppid }\n");
    return makeBundle(directoryTree(repo), "fleet", join(repo, ".cache"));
  })();

  it("the controller's bundle holds what its build found in the object, and it survives the bundle's JSON unchanged", async () => {
    const { bundle } = await made;
    const facts = bundle.parsed?.objects?.[object];
    expect(facts?.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(facts?.summary.programs.map((p) => p.name)).toContain("count_getppid");
    expect(JSON.parse(JSON.stringify(facts))).toStrictEqual(facts);
    const bytes = encodeBundle(bundle);
    expect(decodeBundle(bytes, bundleDigest(bytes)).parsed?.objects?.[object]).toStrictEqual(facts);
  });

  // The bundle's facts say the object's identity is "from-the-controller": whether a host's build
  // has that identity shows whether it inspected the object itself.
  it.each<[string, string | undefined, boolean]>([
    ["facts of this same bpfops: used, the object is not inspected", undefined, true],
    ["facts of another version: the object is inspected", "0.0.0-other", false],
  ])("%s", async (_, by, used) => {
    const { bundle } = await made;
    const parsed = bundle.parsed!;
    const objects = { [object]: { ...parsed.objects![object]!, digest: "from-the-controller" } };
    const b: Bundle = { ...bundle, parsed: { ...parsed, ...(by ? { by } : {}), objects } };
    const build = await buildRevision(bundleTree(b, "r1"), { manifestDir: "fleet", labels: {}, cacheDir: join(repo, ".cache") });
    expect(build.desired.programs[0]!.objectDigest === "from-the-controller").toBe(used);
    expect(build.desired.programs[0]!.objectDigest).toMatch(used ? /^from-the-controller$/ : /^[0-9a-f]{64}$/);
  });
});
