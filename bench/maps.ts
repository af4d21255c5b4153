// bench/maps: a map's contents converging to git (entryPolicy exact, entries in a JSON Lines
// file), 100,000 entries in a hash and in an LPM trie: from empty, and for a 1% change, beside
// the same writes made with `bpftool map update` (one bpftool process running a batch file of
// update commands, each its own syscall) and with one batch write through the addon, measured in
// the same run. Prints figures; asserts nothing.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reconcileOnce } from "../reconciler/agent/reconcile-once.ts";
import { MapHandle } from "../reconciler/kernel/handles.ts";
import { ensureBpffsDir, removePinTree } from "../reconciler/kernel/pins.ts";
import { MapType } from "../schemas/kernel-names.ts";

const N = 100_000;
const CHANGED = N / 100;
const work = mkdtempSync(join(tmpdir(), "bpfops-bench-maps-"));
const root = `/sys/fs/bpf/bpfops-bench-maps-${process.pid}`;
ensureBpffsDir(root);
process.on("exit", () => {
  rmSync(work, { recursive: true, force: true });
  removePinTree(root);
});
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

interface Kind {
  name: string;
  type: "hash" | "lpm_trie";
  keySize: number;
  flags: number;
  key(i: number): Buffer;
}
const kinds: Kind[] = [
  { name: "hash", type: "hash", keySize: 4, flags: 0, key: (i) => Buffer.from(Uint32Array.of(i).buffer) },
  // prefixlen (host order) + an IPv4 /24: 10.a.b.0/24, 100k distinct prefixes
  { name: "lpm_trie", type: "lpm_trie", keySize: 8, flags: 1, key: (i) => Buffer.from([24, 0, 0, 0, 10 + (i >> 16), (i >> 8) & 0xff, i & 0xff, 0]) },
];
const value = (v: number) => Buffer.from(Uint32Array.of(v).buffer);

function repo(k: Kind, bump: number): string {
  const dir = join(work, `repo-${k.name}`);
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < N; i++) lines.push(`{"key":"hex:${k.key(i).toString("hex")}","value":${i < bump ? i + 1_000_000 : i}}`);
  writeFileSync(join(dir, "entries.jsonl"), lines.join("\n") + "\n");
  writeFileSync(
    join(dir, "m.yaml"),
    `apiVersion: bpfops.dev/v1alpha1\nkind: Map\nmetadata: { name: big-${k.name.replace("_", "-")} }\nspec: { type: ${k.type}, keySize: ${k.keySize}, valueSize: 4, maxEntries: ${N * 2}, flags: ${k.flags}, entryPolicy: exact, datapathWrites: none, entriesFile: entries.jsonl }\n`,
  );
  return dir;
}

const splits: string[] = [];
async function bpfops(k: Kind, bump: number): Promise<number> {
  const dir = repo(k, bump);
  const t0 = process.hrtime.bigint();
  const r = await reconcileOnce({ kind: "directory", path: dir }, { mode: "apply", root, labels: {}, cacheDir: join(work, "cache") });
  const took = ms(t0);
  if (!r.plan.changes) throw new Error("bench: the plan had no changes");
  const t = r.timings;
  splits.push(`  ${k.name.padEnd(9)} ${bump ? "1% change " : "from empty"}: build ${t.buildMs.toFixed(0)}, observe ${t.observeMs.toFixed(0)}, plan ${t.planMs.toFixed(0)}, execute ${t.executeMs.toFixed(0)} (kernel ${r.applied!.timings.kernelMs.toFixed(0)})`);
  return took;
}

function fresh(k: Kind, tag: string): { m: MapHandle; pin: string } {
  const pin = join(root, `${tag}-${k.name}`);
  const m = MapHandle.create({ type: MapType[k.type], keySize: k.keySize, valueSize: 4, maxEntries: N * 2, flags: k.flags }, tag);
  m.pin(pin);
  return { m, pin };
}

function bpftool(k: Kind, from: number, to: number, bump: number, pin: string): number {
  const lines: string[] = [];
  const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
  for (let i = from; i < to; i++) lines.push(`map update pinned ${pin} key hex ${hex(k.key(i))} value hex ${hex(value(i < bump ? i + 1_000_000 : i))}`);
  const file = join(work, "bpftool.batch");
  writeFileSync(file, lines.join("\n") + "\n");
  const t0 = process.hrtime.bigint();
  execFileSync("bpftool", ["batch", "file", file], { stdio: "ignore" });
  return ms(t0);
}

function addon(k: Kind, m: MapHandle, from: number, to: number, bump: number): number {
  const entries = [];
  for (let i = from; i < to; i++) entries.push({ key: k.key(i), value: value(i < bump ? i + 1_000_000 : i) });
  const t0 = process.hrtime.bigint();
  m.updateMany(entries);
  return ms(t0);
}

const rows: string[][] = [];
for (const k of kinds) {
  const fromEmpty = await bpfops(k, 0);
  const onePercent = await bpfops(k, CHANGED);
  const tool = fresh(k, "bpftool");
  const toolEmpty = bpftool(k, 0, N, 0, tool.pin);
  const toolChange = bpftool(k, 0, CHANGED, CHANGED, tool.pin);
  tool.m.close();
  const batch = fresh(k, "batch");
  const batchEmpty = addon(k, batch.m, 0, N, 0);
  const batchChange = addon(k, batch.m, 0, CHANGED, CHANGED);
  batch.m.close();
  rows.push([k.name, "bpfops reconcile (exact, entriesFile)", fromEmpty.toFixed(0), onePercent.toFixed(0)]);
  rows.push([k.name, "bpftool map update x N (bpftool batch file)", toolEmpty.toFixed(0), toolChange.toFixed(0)]);
  rows.push([k.name, "addon batch write (BPF_MAP_UPDATE_BATCH)", batchEmpty.toFixed(0), batchChange.toFixed(0)]);
}
console.log(`map contents: ${N} entries, then ${CHANGED} changed (1%); milliseconds, one run each`);
console.log(`  ${"map".padEnd(9)} ${"writer".padEnd(44)} ${"from empty".padStart(11)} ${"1% change".padStart(10)}`);
for (const r of rows) console.log(`  ${r[0]!.padEnd(9)} ${r[1]!.padEnd(44)} ${r[2]!.padStart(11)} ${r[3]!.padStart(10)}`);
console.log("bpfops's figures are whole reconciles: read and check the 100k-line file, observe the map (one batch lookup), plan, write:");
for (const l of splits) console.log(l);
