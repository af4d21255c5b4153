// The bad-input corpus: every broken repository under test/fixtures/bad (and a few made here:
// binary, invalid UTF-8, 10 MB, a symlink out) gives its error code with file, line and field,
// exits 2 promptly, and leaves every kernel id and pin as it was.
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kernelIds } from "../../reconciler/kernel/observe.ts";
import { listPins } from "../../reconciler/kernel/pins.ts";
import { BPF, isRoot, requireKernel } from "./harness.ts";

const FIXTURES = new URL("../fixtures/bad/", import.meta.url).pathname;
type Want = { code: string; line: number; column?: number; field?: string; file?: string };

// Expected first issue of each corpus file.
const EXPECTED: Record<string, Want> = {
  "absolute-object-path": { code: "SchemaViolation", line: 6, column: 11, field: "spec.object" },
  "alias-bomb": { code: "AliasLimit", line: 1 },
  "bad-hook-type": { code: "SchemaViolation", line: 8, field: "spec.hook.type" },
  "bad-interface-name": { code: "SchemaViolation", line: 9, field: "spec.hook.interfaces[0]" },
  "bad-map-type": { code: "SchemaViolation", line: 6, field: "spec.type" },
  "bind-and-max-entries": { code: "SchemaViolation", line: 19, field: "spec.maps.pod_rules" },
  "cgroup-relative-path": { code: "SchemaViolation", line: 9, field: "spec.hook.path" },
  "chain-cycle": { code: "ChainCycle", line: 34, column: 19, field: "spec.stages[1]" },
  "chain-prog-array-wrong-type": { code: "ChainStageType", line: 33, field: "spec.progArray" },
  "chain-stage-wrong-type": { code: "ChainStageType", line: 34, field: "spec.stages[0]" },
  "comments-only": { code: "EmptyManifest", line: 1 },
  "compile-error": { code: "CompileFailed", line: 6, field: "spec.object" },
  "control-character": { code: "NotText", line: 4, column: 12 },
  "duplicate-name": { code: "DuplicateName", line: 12, field: "metadata.name" },
  "empty-file": { code: "EmptyManifest", line: 1 },
  "enormous-global": { code: "SchemaViolation", line: 9, field: "spec.globals.filter_version" },
  "enormous-max-entries": { code: "SchemaViolation", line: 9, field: "spec.maxEntries" },
  "entry-key-too-long": { code: "EntrySize", line: 11, field: "spec.entries[0].key" },
  "fractional-max-entries": { code: "SchemaViolation", line: 9, field: "spec.maxEntries" },
  "global-not-in-rodata": { code: "GlobalNotInObject", line: 9, field: "spec.globals.filter_verison" },
  "global-too-big": { code: "GlobalSize", line: 9, field: "spec.globals.filter_version" },
  "global-wrong-size": { code: "GlobalSize", line: 9, field: "spec.globals.filter_version" },
  "list-document": { code: "SchemaViolation", line: 1 },
  "map-binding-mismatch": { code: "MapBindingMismatch", line: 19, field: "spec.maps.pod_rules.bind" },
  "map-not-in-object": { code: "MapNotInObject", line: 9, field: "spec.maps.pod_ruless" },
  "missing-name": { code: "SchemaViolation", line: 4, field: "metadata.name" },
  "name-too-long": { code: "SchemaViolation", line: 4, field: "metadata.name" },
  "negative-key-size": { code: "SchemaViolation", line: 7, field: "spec.keySize" },
  "null-spec": { code: "SchemaViolation", line: 5, field: "spec" },
  "object-missing": { code: "ObjectMissing", line: 6, field: "spec.object" },
  "object-not-bpf-elf": { code: "ObjectNotElf", line: 6, field: "spec.object" },
  "object-not-elf": { code: "ObjectNotElf", line: 6, field: "spec.object" },
  "object-path-escape": { code: "PathEscape", line: 6, field: "spec.object" },
  "program-not-in-object": { code: "ProgramNotInObject", line: 7, field: "spec.program" },
  "scalar-document": { code: "SchemaViolation", line: 1 },
  "tcx-without-direction": { code: "SchemaViolation", line: 8, field: "spec.hook.direction" },
  "too-many-documents": { code: "TooManyDocuments", line: 1 },
  "tracepoint-bad-name": { code: "SchemaViolation", line: 9, field: "spec.hook.name" },
  "typo-field": { code: "SchemaViolation", line: 6, field: "spec" },
  "unicode-name": { code: "SchemaViolation", line: 4, field: "metadata.name" },
  "unknown-kind": { code: "UnknownKind", line: 2, field: "kind" },
  "unknown-map-binding": { code: "UnknownReference", line: 9, field: "spec.maps.pod_rules.bind" },
  "unknown-program-reference": { code: "UnknownReference", line: 6, field: "spec.program" },
  "unknown-rollout-field": { code: "SchemaViolation", line: 7, field: "spec.rings[0]" },
  "uppercase-name": { code: "SchemaViolation", line: 4, field: "metadata.name" },
  "wrong-api-version": { code: "UnsupportedApiVersion", line: 1, field: "apiVersion" },
  "wrong-program-type-for-hook": { code: "WrongProgramType", line: 16, field: "spec.hook.type" },
  "yaml-bad-indent": { code: "YamlSyntax", line: 4 },
  "yaml-duplicate-key": { code: "YamlSyntax", line: 3 },
  "yaml-tab-indent": { code: "YamlSyntax", line: 4 },
  "yaml-unclosed-flow": { code: "YamlSyntax", line: 2 },
  "array-key-past-max-entries": { code: "EntrySize", line: 12, field: "spec.entries[1].key" },
  "more-entries-than-max-entries": { code: "TooManyEntries", line: 11, field: "spec.entries" },
  "lpm-without-no-prealloc": { code: "MapDefinition", line: 10, field: "spec.flags" },
  "ringbuf-size-not-pages": { code: "MapDefinition", line: 9, field: "spec.maxEntries" },
  "unknown-map-flag": { code: "MapDefinition", line: 10, field: "spec.flags" },
  "map-in-map-without-inner": { code: "MapDefinition", line: 6, field: "spec.innerMap" },
  "map-over-memory-budget": { code: "MapTooLarge", line: 9, field: "spec.maxEntries" },
  "exact-without-datapath-writes": { code: "EntryPolicy", line: 10, field: "spec.entryPolicy" },
  "exact-datapath-inserts": { code: "EntryPolicy", line: 11, field: "spec.datapathWrites" },
  "exact-with-overwrite": { code: "EntryPolicy", line: 12, field: "spec.overwriteEntries" },
  "exact-on-ringbuf": { code: "EntryPolicy", line: 10, field: "spec.entryPolicy" },
  "bad-entry-policy": { code: "SchemaViolation", line: 10, field: "spec.entryPolicy" },
  "cgroup-attach-type-mismatch": { code: "WrongAttachType", line: 18, field: "spec.hook.attachType" },
  "order-cycle": { code: "OrderCycle", line: 16, field: "spec.order.before" },
  "order-on-tracepoint": { code: "OrderNotSupported", line: 16, field: "spec.order" },
  "xdp-order-program-not-shareable": { code: "OrderNotSupported", line: 24, field: "spec.order.after" },
  "order-other-direction": { code: "OrderMismatch", line: 16, field: "spec.order.after" },
  "order-both": { code: "SchemaViolation", line: 16, field: "spec.order" },
  "collection-unknown-member": { code: "UnknownReference", line: 14, field: "spec.program" },
  "collection-and-program": { code: "SchemaViolation", line: 7, field: "spec.program" },
  "collection-program-not-in-object": { code: "ProgramNotInObject", line: 7, field: "spec.programs[1]" },
  "sk-msg-on-hash-map": { code: "WrongMapType", line: 19, field: "spec.hook.map" },
  "uprobe-without-symbol": { code: "SchemaViolation", line: 13, field: "spec.hook" },
  "netfilter-priority-last": { code: "SchemaViolation", line: 17, field: "spec.hook.priority" },
  "uprobe-on-xdp-program": { code: "WrongProgramType", line: 13, field: "spec.hook.type" },
  // made by makeRepo below
  "binary-file": { code: "NotText", line: 1 },
  "invalid-utf8": { code: "NotText", line: 1 },
  "ten-megabytes": { code: "FileTooLarge", line: 1 },
  "symlink-out-object": { code: "PathEscape", line: 6, field: "spec.object" },
  "entries-file-not-json": { file: "entries.jsonl", code: "EntriesFile", line: 3 },
  "entries-file-value-too-big": { file: "entries.jsonl", code: "EntrySize", line: 2, field: "entries[1].value" },
  "entries-file-outside": { code: "PathEscape", line: 10, field: "spec.entriesFile" },
};
const MADE = 7;

const ENTRIES_MAP = "apiVersion: bpfops.dev/v1alpha1\nkind: Map\nmetadata:\n  name: ports\nspec:\n  type: hash\n  keySize: 2\n  valueSize: 2\n  maxEntries: 64\n  entriesFile: ";

const PROG = "apiVersion: bpfops.dev/v1alpha1\nkind: Program\nmetadata:\n  name: filter\nspec:\n  object: objs/link.o\n  program: pod_filter\n";

let work: string;
let root: string;

function makeRepo(name: string): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "objs"), { recursive: true });
  mkdirSync(join(dir, "src"));
  copyFileSync(BPF("pod_filter.o"), join(dir, "objs/pod_filter.o"));
  copyFileSync(BPF("tcx_counter.o"), join(dir, "objs/tcx_counter.o"));
  copyFileSync(BPF("tp_counter.o"), join(dir, "objs/tp_counter.o"));
  copyFileSync(BPF("test/t_cgroup_skb.o"), join(dir, "objs/t_cgroup_skb.o"));
  for (const o of ["t_sk_msg.o", "t_uprobe.o", "t_netfilter.o", "t_collection.o"]) copyFileSync(BPF(`test/${o}`), join(dir, "objs", o));
  writeFileSync(join(dir, "objs/text.o"), "not an object\n");
  const x86 = Buffer.alloc(64);
  x86.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  x86.writeUInt16LE(62, 18); // EM_X86_64
  writeFileSync(join(dir, "objs/x86.o"), x86);
  writeFileSync(join(dir, "src/broken.bpf.c"), "int broken( {\n");
  const m = join(dir, "manifests.yaml");
  if (name === "binary-file") writeFileSync(m, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 0xff, 0xfe, 0x01]));
  else if (name === "invalid-utf8") writeFileSync(m, Buffer.concat([Buffer.from("kind: "), Buffer.from([0xc3, 0x28, 0xa0])]));
  else if (name === "ten-megabytes") writeFileSync(m, "# padding\n".repeat(1 << 20));
  else if (name === "symlink-out-object") {
    symlinkSync(BPF("pod_filter.o"), join(dir, "objs/link.o")); // a real object, but outside the repository
    writeFileSync(m, PROG);
  } else if (name.startsWith("entries-file-")) {
    writeFileSync(m, ENTRIES_MAP + (name === "entries-file-outside" ? "../../../etc/passwd\n" : "entries.jsonl\n"));
    const lines = name === "entries-file-not-json" ? ['{"key": 53, "value": 1}', "# comments are fine", "{key: 80, value: 1}"] : ['{"key": 53, "value": 1}', '{"key": 80, "value": 70000}'];
    writeFileSync(join(dir, "entries.jsonl"), lines.join("\n") + "\n");
  } else copyFileSync(join(FIXTURES, `${name}.yaml`), m);
  return dir;
}

function runCli(dir: string): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/bpfops.cjs", "reconcile", "--dry-run", "--path", dir, "--bpffs", root, "--cache", join(work, "cache"), "--output", "json"]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (status) => resolve({ status, stdout, stderr, ms: Date.now() - t0 }));
  });
}

describe("bad-input corpus", () => {
  const names = Object.keys(EXPECTED);
  const results = new Map<string, Awaited<ReturnType<typeof runCli>>>();
  let before: { ids: ReturnType<typeof kernelIds>; pins: ReturnType<typeof listPins> } | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "bpfops-bad-"));
    root = `/sys/fs/bpf/bpfops-test-${process.pid}-bad`;
    if (isRoot) before = { ids: kernelIds(), pins: listPins("/sys/fs/bpf") };
    // Two at a time: one per core.
    const queue = [...names];
    await Promise.all(
      [0, 1].map(async () => {
        for (let n = queue.shift(); n; n = queue.shift()) results.set(n, await runCli(makeRepo(n)));
      }),
    );
  }, 120_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("holds at least 40 distinct broken inputs", () => {
    expect(readdirSync(FIXTURES).length).toBe(names.length - MADE);
    expect(names.length).toBeGreaterThanOrEqual(40);
  });

  it.for(names)("%s", (name) => {
    const r = results.get(name)!;
    const want = EXPECTED[name]!;
    expect(r.status, r.stderr).toBe(2);
    const out = JSON.parse(r.stdout) as { error: { code: string; issues: Array<Want & { file: string }> } };
    expect(out.error.code).toBe("ManifestInvalid");
    expect(out.error.issues[0]).toMatchObject({ file: "manifests.yaml", ...want });
    const file = (want.file ?? "manifests.yaml").replace(".", "\\.");
    // Every issue, not only the first, names the file, a line and what is wrong, and is on stderr.
    for (const i of out.error.issues) {
      expect(i, JSON.stringify(i)).toMatchObject({ file: expect.stringMatching(/\S/), line: expect.any(Number), code: expect.stringMatching(/^[A-Z]\w+$/), message: expect.stringMatching(/\S/) });
      expect(r.stderr).toContain(`${i.file}:${i.line}:`);
    }
    expect(r.stderr).toMatch(new RegExp(`${file}:${want.line}:\\d+: .*\\[${want.code}\\]`));
    // A guard against hangs (an alias bomb, a 10 MB file), not a benchmark: bench/plan measures.
    expect(r.ms).toBeLessThan(5000);
  });

  it("changed nothing in the kernel: ids and pins are as before", (ctx) => {
    if (!isRoot) {
      if (requireKernel) throw new Error("BPFOPS_REQUIRE_KERNEL=1 but not root");
      return ctx.skip("needs root to read kernel state");
    }
    expect({ ids: kernelIds(), pins: listPins("/sys/fs/bpf") }).toEqual(before);
  });
});
