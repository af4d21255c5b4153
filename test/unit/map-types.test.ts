// Map definitions against what the kernel checks at creation, as a table: one rule each. No kernel.
import { describe, expect, it } from "vitest";
import { checkMapDefinition, entryKind, mapFlags } from "../../reconciler/core/map-types.ts";

const def = (type: string, o: Partial<{ keySize: number; valueSize: number; maxEntries: number; flags: number }> = {}) => ({ type, keySize: 4, valueSize: 4, maxEntries: 64, flags: 0, ...o });

describe("map definitions", () => {
  it.each<[string, ReturnType<typeof def>, string | null]>([
    ["a plain hash", def("hash"), null],
    ["an LPM trie needs no_prealloc", def("lpm_trie", { keySize: 8 }), "flags: a lpm_trie map needs the no_prealloc flag"],
    ["an LPM trie with it", def("lpm_trie", { keySize: 8, flags: 1 }), null],
    ["an array takes no no_prealloc", def("array", { flags: 1 }), "flags: a array map does not take no_prealloc"],
    ["an array's key is 4 bytes", def("array", { keySize: 8 }), "keySize: a array map's keySize is 4"],
    ["a ring buffer has no key or value", def("ringbuf", { maxEntries: 4096 }), "keySize: a ringbuf map's keySize is 0"],
    ["a ring buffer is a power of two of pages", def("ringbuf", { keySize: 0, valueSize: 0, maxEntries: 12288 }), "maxEntries: a ring buffer's size"],
    ["a ring buffer done right", def("ringbuf", { keySize: 0, valueSize: 0, maxEntries: 262144 }), null],
    ["a devmap's value is an ifindex or a devmap value", def("devmap", { valueSize: 6 }), "valueSize: a devmap map's valueSize is 4 or 8"],
    ["a queue has no key", def("queue", { keySize: 4 }), "keySize: a queue map's keySize is 0"],
    ["a perf event array holds fds", def("perf_event_array", { valueSize: 8 }), "valueSize: a perf_event_array map's valueSize is 4"],
    ["a map-in-map's value is a map", def("hash_of_maps", { valueSize: 8 }), "valueSize: a hash_of_maps map's valueSize is 4"],
  ])("%s", (_, d, problem) => {
    const got = checkMapDefinition(d).map((p) => `${p.field}: ${p.message}`);
    if (problem === null) expect(got).toEqual([]);
    else expect(got.join("\n")).toContain(problem);
  });

  it.each<[number | string[] | undefined, number | string]>([
    [undefined, 0],
    [5, 5],
    [["no_prealloc", "rdonly_prog"], 1 | 128],
    [["no_prealoc"], 'unknown map flag "no_prealoc"'],
  ])("flags %j", (flags, want) => {
    const got = mapFlags(flags);
    if (typeof want === "number") expect(got).toBe(want);
    else expect(got).toContain(want);
  });

  it("says what each type's entries are", () => {
    expect([entryKind("hash"), entryKind("queue"), entryKind("devmap"), entryKind("hash_of_maps"), entryKind("cpumap"), entryKind("sockmap")]).toEqual(["keyed", "pushed", "interfaces", "maps", "keyed-cpu", "none"]);
  });
});
