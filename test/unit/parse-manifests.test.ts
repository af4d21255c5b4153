// Parsing manifest files: each case is a file's text and the issues it must give (code, line,
// column, field), or the manifests it must yield. No kernel, no root.
import { describe, expect, it } from "vitest";
import { parseManifestFile } from "../../reconciler/core/parse-manifests.ts";

const H = "apiVersion: bpfops.dev/v1alpha1\n";
const prog = (name: string, extra = "") => `${H}kind: Program\nmetadata:\n  name: ${name}\nspec:\n  object: a.o\n  program: p\n${extra}`;

describe("parseManifestFile", () => {
  it.each<[string, string, Array<{ code: string; line: number; column?: number; field?: string }>]>([
    ["bad YAML", "a: [1, 2\n", [{ code: "YamlSyntax", line: 2 }]],
    ["duplicate key", `${H}${H}kind: Map\n`, [{ code: "YamlSyntax", line: 2 }]],
    ["empty", "\n\n", [{ code: "EmptyManifest", line: 1 }]],
    ["comments only", "# nothing\n---\n# here\n", [{ code: "EmptyManifest", line: 1 }]],
    ["control character", `${H}kind: Program\u0007\n`, [{ code: "NotText", line: 2, column: 14 }]],
    ["wrong apiVersion", "apiVersion: v1\nkind: Program\n", [{ code: "UnsupportedApiVersion", line: 1, column: 13, field: "apiVersion" }]],
    ["unknown kind", `${H}kind: Pod\n`, [{ code: "UnknownKind", line: 2, column: 7, field: "kind" }]],
    ["uppercase name", prog("Pod-Filter"), [{ code: "SchemaViolation", line: 4, column: 9, field: "metadata.name" }]],
    ["unicode name", prog("fïlter"), [{ code: "SchemaViolation", line: 4, field: "metadata.name" }]],
    ["unknown field", prog("x", "  objekt: b.o\n"), [{ code: "SchemaViolation", line: 6, field: "spec" }]],
    ["missing field", `${H}kind: Program\nmetadata: { name: x }\nspec:\n  object: a.o\n`, [{ code: "SchemaViolation", line: 5, field: "spec.program" }]],
    ["absolute object", prog("x").replace("a.o", "/etc/a.o"), [{ code: "SchemaViolation", line: 6, column: 11, field: "spec.object" }]],
    ["not an object", prog("x").replace("a.o", "a.txt"), [{ code: "SchemaViolation", line: 6, field: "spec.object" }]],
    ["enormous maxEntries", `${H}kind: Map\nmetadata: { name: m }\nspec: { type: hash, keySize: 4, valueSize: 4, maxEntries: 1e30 }\n`, [{ code: "SchemaViolation", line: 4, field: "spec.maxEntries" }]],
    ["scalar document", "hello\n", [{ code: "SchemaViolation", line: 1 }]],
    ["second document broken", `${prog("a")}---\n${H}kind: Map\nmetadata: { name: m }\nspec: { type: nope, keySize: 4, valueSize: 4, maxEntries: 1 }\n`, [{ code: "SchemaViolation", line: 12, field: "spec.type" }]],
  ])("%s", (_, text, want) => {
    const r = parseManifestFile("m.yaml", Buffer.from(text));
    // One problem can break several rules of the same field (1e30: not an int, and too big).
    expect(r.issues.length).toBeGreaterThanOrEqual(want.length);
    expect(new Set(r.issues.map((i) => `${i.code} ${i.line} ${i.field}`)).size).toBe(want.length);
    want.forEach((w, i) => expect(r.issues[i]).toMatchObject({ file: "m.yaml", ...w }));
  });

  it("keeps going after a bad document and names each good one", () => {
    const r = parseManifestFile("m.yaml", Buffer.from(`${prog("a")}---\nkind: [\n---\n${prog("b")}`));
    expect(r.manifests.map((m) => m.id)).toEqual(["Program/a", "Program/b"]);
    expect(r.issues.map((i) => i.code)).toEqual(["YamlSyntax"]);
  });

  it("locates any field of a parsed manifest", () => {
    const r = parseManifestFile("m.yaml", Buffer.from(prog("a", "  globals:\n    version: 2\n")));
    expect(r.manifests[0]!.locate(["spec", "globals", "version"])).toEqual({ line: 9, column: 14 });
    expect(r.manifests[0]!.locate(["spec", "maps", "missing"])).toEqual({ line: 6, column: 3 }); // the spec mapping: the nearest node that exists
  });

  it("stops an alias bomb", () => {
    const bomb = `a: &a ["x","x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`;
    expect(parseManifestFile("m.yaml", Buffer.from(bomb)).issues).toMatchObject([{ code: "AliasLimit", line: 1 }]);
  });

  it.each([
    ["binary", Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3])],
    ["invalid UTF-8", Buffer.from([0x6b, 0x69, 0x6e, 0x64, 0x3a, 0x20, 0xc3, 0x28])],
  ])("refuses %s files", (_, bytes) => {
    expect(parseManifestFile("m.yaml", bytes).issues).toMatchObject([{ code: "NotText" }]);
  });

  it("refuses files over the size limit without parsing them", () => {
    expect(parseManifestFile("m.yaml", Buffer.alloc(2 << 20, 0x61)).issues).toMatchObject([{ code: "FileTooLarge", line: 1 }]);
  });
});
